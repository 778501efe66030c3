"""Offline checks of localstack/ (run by scripts/check-infra, no Docker needed).

1. docker-compose.yml beyond its schema: the four services are there, every depends_on names a
   service, every bind mount's source exists in the repository, ports bind to 127.0.0.1 only,
   no password is written into the file, and the init hooks are runnable.
2. The deploy hook (init/ready.d/20-deploy.py) against a throw-away moto server: twice (the
   second run updates), then every state machine whose ASL file exists is deployed with its
   substitutions resolved, and every function with a package is created.

Usage: python scripts/check_localstack.py <moto_server executable>
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile

import boto3
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPOSE_DIR = os.path.join(ROOT, "localstack")
COMPOSE = os.path.join(COMPOSE_DIR, "docker-compose.yml")
HOOKS = os.path.join(COMPOSE_DIR, "init", "ready.d")
REQUIRED_SERVICES = {"localstack", "postgres", "elasticsearch", "kibana"}

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def check_compose():
    with open(COMPOSE, encoding="utf-8") as f:
        text = f.read()
    doc = yaml.safe_load(text)
    services = doc.get("services") or {}
    check(REQUIRED_SERVICES <= set(services), f"services missing: {sorted(REQUIRED_SERVICES - set(services))}")
    for name, service in services.items():
        depends = service.get("depends_on") or []
        for target in depends if isinstance(depends, list) else depends.keys():
            check(target in services, f"{name}: depends_on names no service {target!r}")
        for port in service.get("ports") or []:
            spec = port if isinstance(port, str) else str(port.get("host_ip", ""))
            check(spec.startswith("127.0.0.1:") or spec == "127.0.0.1", f"{name}: port {port!r} is not bound to 127.0.0.1")
        for volume in service.get("volumes") or []:
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith(".") and "$" not in source:
                path = os.path.normpath(os.path.join(COMPOSE_DIR, source))
                check(os.path.exists(path), f"{name}: bind mount source {source} does not exist")
    # Passwords come from the environment (${VAR:?...}), never the file.
    for match in re.finditer(r"(?im)^\s*[A-Z_]*PASSWORD[A-Z_]*\s*:\s*(.+)$", text):
        check(match.group(1).strip().startswith("${"), f"a password is written into the file: {match.group(0).strip()}")
    hooks = sorted(os.listdir(HOOKS))
    check(any(h.endswith(".sh") for h in hooks) and any(h.endswith(".py") for h in hooks), f"init hooks: {hooks}")
    for hook in hooks:
        path = os.path.join(HOOKS, hook)
        if hook.endswith(".sh"):
            check(os.access(path, os.X_OK), f"{hook} is not executable (LocalStack runs .sh hooks directly)")
            check(subprocess.run(["bash", "-n", path]).returncode == 0, f"{hook}: bash -n fails")
        elif hook.endswith(".py"):
            with open(path, encoding="utf-8") as f:
                compile(f.read(), path, "exec")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_deploy_hook(moto_server):
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile(prefix="moto-hook-", suffix=".log", delete=False)
    moto = subprocess.Popen([moto_server, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    try:
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                if time.time() > deadline or moto.poll() is not None:
                    raise SystemExit(f"moto did not start for the hook check (log: {log.name})")
                time.sleep(0.2)

        with open(os.path.join(ROOT, "template.yaml"), encoding="utf-8") as f:
            text = f.read()
        binaries = re.findall(r"^\s+Binary:\s*(\S+)\s*$", text, re.M)
        with tempfile.TemporaryDirectory() as lambda_dir:
            # A package for every function but the last: the hook must skip a missing one.
            for binary in binaries[:-1]:
                os.makedirs(os.path.join(lambda_dir, binary))
                with zipfile.ZipFile(os.path.join(lambda_dir, binary, "bootstrap.zip"), "w") as z:
                    z.writestr("bootstrap", "#!/bin/sh\necho stand-in\n")
            env = dict(
                os.environ,
                AWS_ENDPOINT_URL=endpoint,
                AWS_REGION="us-east-1",
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
                ETL_TEMPLATE=os.path.join(ROOT, "template.yaml"),
                ETL_LAMBDA_DIR=lambda_dir,
                ETL_PG_PASSWORD="stand-in",
                ETL_ACCOUNT_ID="123456789012",
            )
            hook = os.path.join(HOOKS, "20-deploy.py")
            for attempt in ("first", "second"):
                run = subprocess.run([sys.executable, hook], env=env, capture_output=True, text=True)
                check(run.returncode == 0, f"deploy hook, {attempt} run: exit {run.returncode}\n{run.stdout}{run.stderr}")

        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
        sfn = session.client("stepfunctions", endpoint_url=endpoint)
        lam = session.client("lambda", endpoint_url=endpoint)
        deployed = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
        expected = {
            f.removesuffix(".asl.json")
            for f in os.listdir(os.path.join(ROOT, "infra", "statemachines"))
            if f.endswith(".asl.json")
        }
        check(set(deployed) == expected, f"state machines deployed {sorted(deployed)}, expected {sorted(expected)}")
        for name, arn in deployed.items():
            definition = sfn.describe_state_machine(stateMachineArn=arn)["definition"]
            check("${" not in definition, f"{name}: unresolved substitution")
            check(":function:" in definition, f"{name}: no function ARN in the definition")
        functions = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
        check(set(functions) == set(binaries[:-1]), f"functions {sorted(functions)}, expected {sorted(binaries[:-1])}")
        for name, function in functions.items():
            variables = function.get("Environment", {}).get("Variables", {})
            check(variables.get("DATABASE_URL", "").startswith("postgres://etl:"), f"{name}: no DATABASE_URL")
            check(variables.get("ETL_BUCKET") == "etl-lake-local", f"{name}: ETL_BUCKET {variables.get('ETL_BUCKET')}")
    finally:
        moto.terminate()
        moto.wait(timeout=10)
        os.unlink(log.name)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    check_compose()
    check_deploy_hook(sys.argv[1])
    if failures:
        for failure in failures:
            print(f"  FAILED: {failure}", file=sys.stderr)
        raise SystemExit(f"localstack/: {len(failures)} problem(s)")
    print("localstack/: compose file, init hooks and deploy hook OK")


if __name__ == "__main__":
    main()
