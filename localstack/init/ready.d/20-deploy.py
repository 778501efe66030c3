"""LocalStack init hook (READY): deploy the pipelines' functions and state machines.

Reads the same template.yaml that SAM deploys and does locally what SAM + CloudFormation do on
AWS, for LocalStack:

- every AWS::Serverless::Function whose package exists (`cargo lambda build --output-format
  zip` writes $CARGO_TARGET_DIR/lambda/<binary>/bootstrap.zip, mounted at /opt/etl/lambda)
  becomes a Lambda function named after its binary, with the compose services' addresses in
  its environment;
- every AWS::Serverless::StateMachine becomes a state machine named after its ASL file, with
  its DefinitionSubstitutions resolved like `etl run` resolves them (function ARNs, parameter
  defaults).

Idempotent: existing functions and machines are updated. LocalStack exec()s .py hooks in its
own interpreter (boto3 and PyYAML are there). The same file runs on the host against any endpoint:
    AWS_ENDPOINT_URL=http://127.0.0.1:4566 ETL_TEMPLATE=template.yaml \
    ETL_LAMBDA_DIR=$CARGO_TARGET_DIR/lambda python3 localstack/init/ready.d/20-deploy.py
scripts/check-infra runs it against a throw-away moto server.
"""

import json
import os
import re
import sys

import boto3
import yaml

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://localhost:4566")
REGION = os.environ.get("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
# LocalStack's default account; moto's is 123456789012.
ACCOUNT = os.environ.get("ETL_ACCOUNT_ID", "000000000000")
TEMPLATE = os.environ.get("ETL_TEMPLATE", "/opt/etl/template.yaml")
LAMBDA_DIR = os.environ.get("ETL_LAMBDA_DIR", "/opt/etl/lambda")
# cargo lambda builds for the host's architecture unless told otherwise (--arm64).
ARCHITECTURE = os.environ.get("ETL_LAMBDA_ARCH", "x86_64")
# Local stand-ins only; LocalStack does not enforce IAM by default.
LAMBDA_ROLE = f"arn:aws:iam::{ACCOUNT}:role/etl-local-lambda"
STATES_ROLE = f"arn:aws:iam::{ACCOUNT}:role/etl-local-states"


def log(message):
    print(f"[etl deploy] {message}", flush=True)


class TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !GetAtt, !If, ...) as {tag: value}."""


def _tagged(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


TemplateLoader.add_multi_constructor("!", _tagged)


def function_arn(name):
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def resolve(value, functions, parameters):
    """A DefinitionSubstitutions value, as `etl run` resolves it (etl-cli/src/template.rs)."""
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, dict) and "GetAtt" in value:
        resource, _, attribute = str(value["GetAtt"]).partition(".")
        if resource in functions and attribute == "Arn":
            return function_arn(functions[resource])
        raise ValueError(f"!GetAtt {value['GetAtt']} has no local meaning")
    if isinstance(value, dict) and "Ref" in value:
        target = value["Ref"]
        if target in functions:
            return functions[target]
        default = parameters.get(target, {}).get("Default")
        if default is None:
            raise ValueError(f"!Ref {target} is neither a function nor a parameter with a Default")
        return str(default)
    raise ValueError(f"unsupported substitution {value!r}")


def substitute(text, values):
    def one(match):
        name = match.group(1)
        if name not in values:
            raise ValueError(f"${{{name}}} has no substitution")
        return values[name]

    return re.sub(r"\$\{([A-Za-z0-9_]+)\}", one, text)


def function_environment(globals_env):
    """What a function needs inside the compose network (never a real credential)."""
    env = {k: v for k, v in globals_env.items() if isinstance(v, str)}
    env.update(
        {
            "ETL_BUCKET": os.environ.get("ETL_BUCKET", "etl-lake-local"),
            "ETL_S3_FORCE_PATH_STYLE": "true",
            "AWS_ENDPOINT_URL": os.environ.get("ETL_FUNCTION_AWS_ENDPOINT", "http://localstack:4566"),
            "ELASTICSEARCH_URL": os.environ.get("ETL_FUNCTION_ES_URL", "http://elasticsearch:9200"),
        }
    )
    password = os.environ.get("ETL_PG_PASSWORD")
    if password:
        env["DATABASE_URL"] = f"postgres://etl:{password}@postgres:5432/etl"
    return env


def ensure_role(iam, arn, service):
    """The execution role, created once (LocalStack does not enforce it; moto checks it exists)."""
    name = arn.rsplit("/", 1)[-1]
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }
    try:
        iam.get_role(RoleName=name)
    except iam.exceptions.NoSuchEntityException:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        log(f"role {name}: created")


def deploy_function(client, name, props, globals_fn, env):
    package = os.path.join(LAMBDA_DIR, name, "bootstrap.zip")
    if not os.path.isfile(package):
        log(f"function {name}: no {package} (run `cargo lambda build --output-format zip`); skipped")
        return False
    with open(package, "rb") as f:
        code = f.read()
    settings = {
        "Runtime": globals_fn.get("Runtime", "provided.al2023"),
        "Handler": globals_fn.get("Handler", "bootstrap"),
        "Role": LAMBDA_ROLE,
        "MemorySize": int(props.get("MemorySize", globals_fn.get("MemorySize", 128))),
        "Timeout": int(props.get("Timeout", globals_fn.get("Timeout", 30))),
        "Environment": {"Variables": env},
    }
    try:
        client.get_function(FunctionName=name)
    except client.exceptions.ResourceNotFoundException:
        client.create_function(
            FunctionName=name,
            Code={"ZipFile": code},
            Architectures=[ARCHITECTURE],
            **settings,
        )
        log(f"function {name}: created")
        return True
    client.update_function_code(FunctionName=name, ZipFile=code, Architectures=[ARCHITECTURE])
    client.get_waiter("function_updated_v2").wait(FunctionName=name)
    client.update_function_configuration(FunctionName=name, **settings)
    log(f"function {name}: updated")
    return True


def deploy_machine(client, root, logical_id, props, functions, parameters):
    uri = props["DefinitionUri"]
    name = os.path.basename(uri).removesuffix(".asl.json")
    path = os.path.join(root, uri)
    if not os.path.isfile(path):
        log(f"state machine {name}: {uri} does not exist yet; skipped")
        return None
    values = {
        key: resolve(value, functions, parameters)
        for key, value in (props.get("DefinitionSubstitutions") or {}).items()
    }
    with open(path, encoding="utf-8") as f:
        definition = substitute(f.read(), values)
    json.loads(definition)  # fail here, naming the file, rather than in the service
    arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
    existing = {m["name"]: m["stateMachineArn"] for m in client.list_state_machines()["stateMachines"]}
    if name in existing:
        client.update_state_machine(
            stateMachineArn=existing[name], definition=definition, roleArn=STATES_ROLE
        )
        log(f"state machine {name} ({logical_id}): updated")
        return existing[name]
    created = client.create_state_machine(
        name=name, definition=definition, roleArn=STATES_ROLE, type=props.get("Type", "STANDARD")
    )
    log(f"state machine {name} ({logical_id}): created")
    return created.get("stateMachineArn", arn)


def main():
    with open(TEMPLATE, encoding="utf-8") as f:
        template = yaml.load(f, Loader=TemplateLoader)
    root = os.path.dirname(os.path.abspath(TEMPLATE))
    resources = template["Resources"]
    parameters = template.get("Parameters", {})
    globals_fn = (template.get("Globals") or {}).get("Function", {})
    globals_env = (globals_fn.get("Environment") or {}).get("Variables", {})

    functions = {
        logical_id: r["Metadata"]["BuildProperties"]["Binary"]
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::Serverless::Function"
    }
    session = boto3.session.Session(
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        region_name=REGION,
    )
    lambda_client = session.client("lambda", endpoint_url=ENDPOINT)
    sfn = session.client("stepfunctions", endpoint_url=ENDPOINT)
    iam = session.client("iam", endpoint_url=ENDPOINT)
    ensure_role(iam, LAMBDA_ROLE, "lambda.amazonaws.com")
    ensure_role(iam, STATES_ROLE, "states.amazonaws.com")

    env = function_environment(globals_env)
    deployed = sum(
        deploy_function(lambda_client, binary, resources[logical_id].get("Properties", {}), globals_fn, env)
        for logical_id, binary in functions.items()
    )
    machines = [
        deploy_machine(sfn, root, logical_id, r["Properties"], functions, parameters)
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::Serverless::StateMachine"
    ]
    log(
        f"{deployed} of {len(functions)} functions, "
        f"{sum(m is not None for m in machines)} of {len(machines)} state machines deployed"
    )


if __name__ == "__main__":
    try:
        main()
    except Exception as err:
        log(f"ERROR: {err}")
        sys.exit(1)
else:
    # LocalStack exec()s .py hooks with empty globals, so __name__ is not "__main__" there.
    # An exception marks the hook ERROR in LocalStack's log (never sys.exit in its process).
    main()
