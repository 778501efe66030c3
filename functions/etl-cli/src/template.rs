//! Reads the SAM template: which state machines exist, where their ASL files are, what
//! their `DefinitionSubstitutions` resolve to locally, and which EventBridge Scheduler
//! schedules start them. The template stays the one source of truth for the cloud
//! deployment, `etl run` and `etl schedules`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value as Yaml;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid YAML: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("template: {0}")]
    Invalid(String),
    #[error("no state machine named {name:?}; known: {known}")]
    UnknownMachine { name: String, known: String },
}

/// A state machine as the template declares it.
#[derive(Debug, Clone)]
pub struct MachineSpec {
    /// The ASL file's stem, e.g. `hr-setup` for `infra/statemachines/hr-setup.asl.json`.
    pub name: String,
    pub logical_id: String,
    pub definition_path: PathBuf,
    /// `${Name}` → its local value (function ARNs point at local function names).
    pub substitutions: HashMap<String, String>,
}

impl MachineSpec {
    /// The ASL text with every `${…}` substitution applied, as SAM does on deploy.
    pub fn definition(&self) -> Result<String, TemplateError> {
        self.definition_with(&HashMap::new())
    }

    /// As [`Self::definition`], with some substitutions overridden (e.g. `MaxConcurrency`
    /// for one local backfill).
    pub fn definition_with(
        &self,
        overrides: &HashMap<String, String>,
    ) -> Result<String, TemplateError> {
        for key in overrides.keys() {
            if !self.substitutions.contains_key(key) {
                return Err(TemplateError::Invalid(format!(
                    "{} has no substitution {key} to override (it has: {})",
                    self.name,
                    {
                        let mut keys: Vec<&str> =
                            self.substitutions.keys().map(String::as_str).collect();
                        keys.sort_unstable();
                        keys.join(", ")
                    }
                )));
            }
        }
        let mut values = self.substitutions.clone();
        values.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        let text = std::fs::read_to_string(&self.definition_path).map_err(|source| {
            TemplateError::Read {
                path: self.definition_path.clone(),
                source,
            }
        })?;
        substitute(&text, &values)
            .map_err(|missing| TemplateError::Invalid(format!(
                "{} uses ${{{missing}}} but the template's DefinitionSubstitutions for {} do not define it",
                self.definition_path.display(),
                self.logical_id
            )))
    }
}

/// Whether a schedule fires, as EventBridge Scheduler spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleState {
    Enabled,
    Disabled,
}

impl ScheduleState {
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleState::Enabled => "ENABLED",
            ScheduleState::Disabled => "DISABLED",
        }
    }
}

impl std::str::FromStr for ScheduleState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "ENABLED" => Ok(ScheduleState::Enabled),
            "DISABLED" => Ok(ScheduleState::Disabled),
            _ => Err(format!(
                "schedule state {s:?} is neither ENABLED nor DISABLED"
            )),
        }
    }
}

/// How late after its time the scheduler may start a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlexibleWindow {
    Off,
    Flexible { maximum_minutes: u32 },
}

/// The scheduler's retries of a start it could not deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub maximum_event_age_seconds: u32,
    pub maximum_retry_attempts: u32,
}

/// An `AWS::Scheduler::Schedule` resource, with parameters resolved to their defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleSpec {
    pub logical_id: String,
    /// The name `etl schedules` gives it: `Properties.Name` if set, else the logical id.
    pub name: String,
    pub description: Option<String>,
    /// `cron(…)`, `rate(…)` or `at(…)`.
    pub expression: String,
    pub timezone: String,
    pub state: ScheduleState,
    pub flexible_window: FlexibleWindow,
    pub retry_policy: Option<RetryPolicy>,
    /// The execution input, JSON text with the scheduler's `<aws.…>` placeholders.
    pub input: String,
    /// Logical id of the state machine the target starts.
    pub target_machine: String,
    /// Whether the template gives the target a dead-letter queue.
    pub dead_letter_queue: bool,
}

/// What Lambda gives one function: how long an invocation may run and how much memory it
/// may use before Lambda ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FunctionSizing {
    pub timeout_seconds: u64,
    /// Lambda's "MB" are MiB: 128 MB is 134,217,728 bytes.
    pub memory_mb: u64,
}

impl FunctionSizing {
    /// Lambda's own defaults for a function that sets neither (3 s, 128 MB).
    pub const LAMBDA_DEFAULT: FunctionSizing = FunctionSizing {
        timeout_seconds: 3,
        memory_mb: 128,
    };

    /// `Timeout` and `MemorySize` of `properties`, each falling back to `defaults`.
    fn from_properties(properties: Option<&Yaml>, defaults: FunctionSizing) -> Self {
        let number = |key: &str| properties.and_then(|p| p.get(key)).and_then(Yaml::as_u64);
        FunctionSizing {
            timeout_seconds: number("Timeout").unwrap_or(defaults.timeout_seconds),
            memory_mb: number("MemorySize").unwrap_or(defaults.memory_mb),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Template {
    /// In template order: `etl run all` runs them in this order.
    pub machines: Vec<MachineSpec>,
    /// Lambda function logical id → the binary it runs.
    pub functions: HashMap<String, String>,
    /// The functions' binaries in template order, each once.
    binaries: Vec<String>,
    /// Binary → its `Timeout` and `MemorySize` (the function's own, else `Globals.Function`).
    sizing: HashMap<String, FunctionSizing>,
    /// In template order.
    pub schedules: Vec<ScheduleSpec>,
}

/// Local stand-in for the account/region part of function ARNs.
const LOCAL_FUNCTION_ARN_PREFIX: &str = "arn:aws:lambda:us-east-1:000000000000:function:";

impl Template {
    pub fn load(path: &Path) -> Result<Self, TemplateError> {
        let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let doc: Yaml = serde_yaml::from_str(&text).map_err(|source| TemplateError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        let root = path.parent().unwrap_or(Path::new("."));
        Self::from_yaml(&doc, root)
    }

    fn from_yaml(doc: &Yaml, root: &Path) -> Result<Self, TemplateError> {
        let resources = doc
            .get("Resources")
            .and_then(Yaml::as_mapping)
            .ok_or_else(|| TemplateError::Invalid("no Resources section".into()))?;
        let parameters = doc.get("Parameters").and_then(Yaml::as_mapping);
        let global_sizing = FunctionSizing::from_properties(
            doc.get("Globals").and_then(|g| g.get("Function")),
            FunctionSizing::LAMBDA_DEFAULT,
        );

        let mut functions = HashMap::new();
        let mut binaries = Vec::new();
        let mut sizing = HashMap::new();
        for (id, resource) in resources {
            let (Some(id), Some("AWS::Serverless::Function")) =
                (id.as_str(), resource.get("Type").and_then(Yaml::as_str))
            else {
                continue;
            };
            let binary = resource
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Yaml::as_str)
                .ok_or_else(|| {
                    TemplateError::Invalid(format!(
                        "function {id} has no Metadata.BuildProperties.Binary"
                    ))
                })?;
            functions.insert(id.to_string(), binary.to_string());
            sizing.insert(
                binary.to_string(),
                FunctionSizing::from_properties(resource.get("Properties"), global_sizing),
            );
            if !binaries.iter().any(|b| b == binary) {
                binaries.push(binary.to_string());
            }
        }

        let mut machines = Vec::new();
        for (id, props) in resources_of_type(resources, "AWS::Serverless::StateMachine") {
            let props = props?;
            let uri = props
                .get("DefinitionUri")
                .and_then(Yaml::as_str)
                .ok_or_else(|| {
                    TemplateError::Invalid(format!(
                        "{id} needs a DefinitionUri pointing at an ASL file"
                    ))
                })?;
            let definition_path = root.join(uri);
            let name = definition_path
                .file_name()
                .and_then(|f| f.to_str())
                .and_then(|f| f.strip_suffix(".asl.json"))
                .ok_or_else(|| {
                    TemplateError::Invalid(format!(
                        "{id}: DefinitionUri {uri} must end in .asl.json"
                    ))
                })?
                .to_string();
            let mut substitutions = HashMap::new();
            if let Some(subs) = props
                .get("DefinitionSubstitutions")
                .and_then(Yaml::as_mapping)
            {
                for (key, value) in subs {
                    let key = key.as_str().ok_or_else(|| {
                        TemplateError::Invalid(format!("{id}: substitution keys must be strings"))
                    })?;
                    let local = resolve_local(value, &functions, parameters)
                        .map_err(|e| TemplateError::Invalid(format!("{id}.{key}: {e}")))?;
                    substitutions.insert(key.to_string(), local);
                }
            }
            machines.push(MachineSpec {
                name,
                logical_id: id.to_string(),
                definition_path,
                substitutions,
            });
        }
        let mut schedules = Vec::new();
        for (id, props) in resources_of_type(resources, "AWS::Scheduler::Schedule") {
            let props = props?;
            schedules.push(
                schedule_from_yaml(id, props, &machines, parameters)
                    .map_err(|e| TemplateError::Invalid(format!("{id}: {e}")))?,
            );
        }
        Ok(Self {
            machines,
            functions,
            binaries,
            sizing,
            schedules,
        })
    }

    pub fn machine(&self, name: &str) -> Result<&MachineSpec, TemplateError> {
        self.machines
            .iter()
            .find(|m| m.name == name || m.logical_id == name)
            .ok_or_else(|| TemplateError::UnknownMachine {
                name: name.to_string(),
                known: self.machine_names().join(", "),
            })
    }

    /// The binaries the template's Lambda functions run (`Metadata.BuildProperties.Binary`),
    /// in template order.
    pub fn function_binaries(&self) -> &[String] {
        &self.binaries
    }

    /// The `Timeout` and `MemorySize` Lambda gives the function running `binary`.
    pub fn sizing(&self, binary: &str) -> Option<FunctionSizing> {
        self.sizing.get(binary).copied()
    }

    /// Every function's sizing, by binary.
    pub fn all_sizing(&self) -> &HashMap<String, FunctionSizing> {
        &self.sizing
    }

    pub fn machine_names(&self) -> Vec<&str> {
        self.machines.iter().map(|m| m.name.as_str()).collect()
    }
}

/// One schedule resource. Only what `etl schedules` can reproduce through the API is
/// accepted; anything else is an error rather than silently dropped.
fn schedule_from_yaml(
    id: &str,
    props: &Yaml,
    machines: &[MachineSpec],
    parameters: Option<&serde_yaml::Mapping>,
) -> Result<ScheduleSpec, String> {
    let no_functions = HashMap::new();
    // A scalar, or a `!Ref` to a parameter's default.
    let scalar = |value: &Yaml, what: &str| -> Result<String, String> {
        resolve_local(value, &no_functions, parameters).map_err(|e| format!("{what}: {e}"))
    };
    let required = |value: Option<&Yaml>, what: &str| -> Result<String, String> {
        scalar(value.ok_or_else(|| format!("{what} is required"))?, what)
    };
    let number = |value: Option<&Yaml>, what: &str| -> Result<u32, String> {
        let text = required(value, what)?;
        text.parse()
            .map_err(|_| format!("{what} must be a whole number, not {text:?}"))
    };

    let window = props
        .get("FlexibleTimeWindow")
        .ok_or("FlexibleTimeWindow is required")?;
    let flexible_window = match required(window.get("Mode"), "FlexibleTimeWindow.Mode")?.as_str() {
        "OFF" => FlexibleWindow::Off,
        "FLEXIBLE" => FlexibleWindow::Flexible {
            maximum_minutes: number(
                window.get("MaximumWindowInMinutes"),
                "FlexibleTimeWindow.MaximumWindowInMinutes",
            )?,
        },
        other => {
            return Err(format!(
                "FlexibleTimeWindow.Mode {other:?} is not OFF or FLEXIBLE"
            ))
        }
    };

    let target = props.get("Target").ok_or("Target is required")?;
    let target_machine = machine_reference(target.get("Arn"), machines)?;
    let input = required(target.get("Input"), "Target.Input")?;
    serde_json::from_str::<serde_json::Value>(&input)
        .map_err(|e| format!("Target.Input is not JSON: {e}"))?;
    let retry_policy = target
        .get("RetryPolicy")
        .map(|policy| -> Result<RetryPolicy, String> {
            Ok(RetryPolicy {
                maximum_event_age_seconds: number(
                    policy.get("MaximumEventAgeInSeconds"),
                    "RetryPolicy.MaximumEventAgeInSeconds",
                )?,
                maximum_retry_attempts: number(
                    policy.get("MaximumRetryAttempts"),
                    "RetryPolicy.MaximumRetryAttempts",
                )?,
            })
        })
        .transpose()?;
    let state = match props.get("State") {
        Some(value) => scalar(value, "State")?.parse()?,
        None => ScheduleState::Enabled, // the service's default
    };
    let name = match props.get("Name") {
        Some(value) => scalar(value, "Name")?,
        None => id.to_string(),
    };
    Ok(ScheduleSpec {
        logical_id: id.to_string(),
        name,
        description: props
            .get("Description")
            .map(|d| scalar(d, "Description"))
            .transpose()?,
        expression: required(props.get("ScheduleExpression"), "ScheduleExpression")?,
        timezone: props
            .get("ScheduleExpressionTimezone")
            .map(|tz| scalar(tz, "ScheduleExpressionTimezone"))
            .transpose()?
            .unwrap_or_else(|| "UTC".to_string()),
        state,
        flexible_window,
        retry_policy,
        input,
        target_machine,
        dead_letter_queue: target.get("DeadLetterConfig").is_some(),
    })
}

/// `!Ref Machine` or `!GetAtt Machine.Arn`: the logical id of a state machine the template
/// declares.
fn machine_reference(value: Option<&Yaml>, machines: &[MachineSpec]) -> Result<String, String> {
    let Some(Yaml::Tagged(tagged)) = value else {
        return Err("Target.Arn must be !Ref or !GetAtt of a state machine".into());
    };
    let argument = tagged.value.as_str().unwrap_or_default();
    let logical_id = match tagged.tag.to_string().trim_start_matches('!') {
        "Ref" => argument,
        "GetAtt" => argument.strip_suffix(".Arn").unwrap_or_default(),
        _ => "",
    };
    if machines.iter().any(|m| m.logical_id == logical_id) {
        Ok(logical_id.to_string())
    } else {
        Err(format!(
            "Target.Arn must be !Ref or !GetAtt of a state machine in this template (known: {})",
            machines
                .iter()
                .map(|m| m.logical_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// What a substitution value means on this machine: `!GetAtt Fn.Arn` → a local function
/// ARN, `!Ref Param` → the parameter's default, a plain scalar → itself.
fn resolve_local(
    value: &Yaml,
    functions: &HashMap<String, String>,
    parameters: Option<&serde_yaml::Mapping>,
) -> Result<String, String> {
    match value {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Number(n) => Ok(n.to_string()),
        Yaml::Bool(b) => Ok(b.to_string()),
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let target = tagged
                .value
                .as_str()
                .ok_or_else(|| format!("!{tag} needs a scalar argument"))?;
            match tag {
                "GetAtt" => {
                    let (resource, attribute) = target
                        .split_once('.')
                        .ok_or_else(|| format!("!GetAtt {target} needs Resource.Attribute"))?;
                    match (functions.get(resource), attribute) {
                        (Some(binary), "Arn") => Ok(format!("{LOCAL_FUNCTION_ARN_PREFIX}{binary}")),
                        _ => Err(format!(
                            "!GetAtt {target} has no local meaning (only function ARNs do)"
                        )),
                    }
                }
                "Ref" => {
                    if let Some(binary) = functions.get(target) {
                        return Ok(binary.clone());
                    }
                    parameters
                        .and_then(|p| p.get(target))
                        .and_then(|p| p.get("Default"))
                        .and_then(|d| match d {
                            Yaml::String(s) => Some(s.clone()),
                            Yaml::Number(n) => Some(n.to_string()),
                            _ => None,
                        })
                        .ok_or_else(|| format!("!Ref {target} is neither a function nor a parameter with a Default"))
                }
                other => Err(format!(
                    "!{other} is not supported in DefinitionSubstitutions"
                )),
            }
        }
        _ => Err("unsupported substitution value".into()),
    }
}

/// Replaces `${Name}` with its value; `Err(name)` for the first name with no value.
fn substitute(text: &str, values: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        let value = values.get(name).ok_or_else(|| name.to_string())?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The (logical id, Properties) of every resource of one type; a resource without Properties
/// is an error.
fn resources_of_type<'a>(
    resources: &'a serde_yaml::Mapping,
    resource_type: &'a str,
) -> impl Iterator<Item = (&'a str, Result<&'a Yaml, TemplateError>)> + 'a {
    resources.iter().filter_map(move |(id, resource)| {
        let id = id.as_str()?;
        (resource.get("Type").and_then(Yaml::as_str) == Some(resource_type)).then(|| {
            let props = resource
                .get("Properties")
                .ok_or_else(|| TemplateError::Invalid(format!("{id} has no Properties")));
            (id, props)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_sizing_falls_back_to_globals_then_lambda_defaults() {
        let doc: Yaml = serde_yaml::from_str(
            r#"
Globals:
  Function: {Timeout: 30}
Resources:
  Own:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: own}}
    Properties: {Timeout: 900, MemorySize: 1024}
  Inherits:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: inherits}}
"#,
        )
        .unwrap();
        let template = Template::from_yaml(&doc, Path::new("/repo")).unwrap();
        let sizing = |timeout_seconds, memory_mb| FunctionSizing {
            timeout_seconds,
            memory_mb,
        };
        assert_eq!(template.sizing("own"), Some(sizing(900, 1024)));
        assert_eq!(template.sizing("inherits"), Some(sizing(30, 128)));
        assert_eq!(template.sizing("missing"), None);
    }

    #[test]
    fn substitutions_resolve_to_local_functions_and_defaults() {
        let doc: Yaml = serde_yaml::from_str(
            r#"
Parameters:
  Interval: {Type: Number, Default: 300}
Resources:
  SchemaFn:
    Type: AWS::Serverless::Function
    Metadata: {BuildProperties: {Binary: hr-schema}}
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: infra/statemachines/hr-setup.asl.json
      DefinitionSubstitutions:
        Fn: !GetAtt SchemaFn.Arn
        Interval: !Ref Interval
        Plain: hello
"#,
        )
        .unwrap();
        let template = Template::from_yaml(&doc, Path::new("/repo")).unwrap();
        let machine = template.machine("hr-setup").unwrap();
        assert_eq!(
            machine.definition_path,
            Path::new("/repo/infra/statemachines/hr-setup.asl.json")
        );
        assert_eq!(
            machine.substitutions["Fn"],
            "arn:aws:lambda:us-east-1:000000000000:function:hr-schema"
        );
        assert_eq!(machine.substitutions["Interval"], "300");
        assert_eq!(machine.substitutions["Plain"], "hello");
        assert!(template
            .machine("nope")
            .unwrap_err()
            .to_string()
            .contains("hr-setup"));
    }

    const SCHEDULED: &str = r#"
Parameters:
  Window: {Type: Number, Default: 15}
  State: {Type: String, Default: DISABLED}
Resources:
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionUri: infra/statemachines/hr.asl.json
  Daily:
    Type: AWS::Scheduler::Schedule
    Properties:
      Description: every day
      ScheduleExpression: cron(30 0 * * ? *)
      State: !Ref State
      FlexibleTimeWindow: {Mode: FLEXIBLE, MaximumWindowInMinutes: !Ref Window}
      Target:
        Arn: !Ref Machine
        RoleArn: !GetAtt Role.Arn
        Input: '{"scheduled_time": "<aws.scheduler.scheduled-time>", "cadence": "daily"}'
        RetryPolicy: {MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 3}
        DeadLetterConfig: {Arn: !GetAtt Queue.Arn}
  Minimal:
    Type: AWS::Scheduler::Schedule
    Properties:
      Name: minimal
      ScheduleExpression: rate(1 hour)
      ScheduleExpressionTimezone: Europe/Madrid
      FlexibleTimeWindow: {Mode: "OFF"}
      Target: {Arn: !GetAtt Machine.Arn, RoleArn: x, Input: "{}"}
"#;

    #[test]
    fn schedules_parse_with_parameter_defaults_and_their_target_machine() {
        let doc: Yaml = serde_yaml::from_str(SCHEDULED).unwrap();
        let template = Template::from_yaml(&doc, Path::new("/repo")).unwrap();
        assert_eq!(
            template.schedules,
            vec![
                ScheduleSpec {
                    logical_id: "Daily".into(),
                    name: "Daily".into(),
                    description: Some("every day".into()),
                    expression: "cron(30 0 * * ? *)".into(),
                    timezone: "UTC".into(),
                    state: ScheduleState::Disabled,
                    flexible_window: FlexibleWindow::Flexible { maximum_minutes: 15 },
                    retry_policy: Some(RetryPolicy {
                        maximum_event_age_seconds: 3600,
                        maximum_retry_attempts: 3
                    }),
                    input: r#"{"scheduled_time": "<aws.scheduler.scheduled-time>", "cadence": "daily"}"#
                        .into(),
                    target_machine: "Machine".into(),
                    dead_letter_queue: true,
                },
                ScheduleSpec {
                    logical_id: "Minimal".into(),
                    name: "minimal".into(),
                    description: None,
                    expression: "rate(1 hour)".into(),
                    timezone: "Europe/Madrid".into(),
                    state: ScheduleState::Enabled,
                    flexible_window: FlexibleWindow::Off,
                    retry_policy: None,
                    input: "{}".into(),
                    target_machine: "Machine".into(),
                    dead_letter_queue: false,
                }
            ]
        );
    }

    #[test]
    fn a_schedule_the_cli_cannot_reproduce_is_an_error_naming_it() {
        for (from, to, complaint) in [
            ("Arn: !Ref Machine", "Arn: !Ref Elsewhere", "Target.Arn"),
            ("Input: \"{}\"", "Input: \"{not json\"", "not JSON"),
            ("Mode: \"OFF\"", "Mode: SOMETIMES", "SOMETIMES"),
            (
                "MaximumWindowInMinutes: !Ref Window",
                "MaximumWindowInMinutes: !Ref Nope",
                "Nope",
            ),
        ] {
            let text = SCHEDULED.replacen(from, to, 1);
            assert_ne!(text, SCHEDULED, "{from} not found");
            let doc: Yaml = serde_yaml::from_str(&text).unwrap();
            let err = Template::from_yaml(&doc, Path::new("/repo"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(complaint), "{to}: {err}");
        }
    }

    #[test]
    fn function_binaries_are_listed_once_in_template_order() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let template = Template::load(&root.join("template.yaml")).unwrap();
        let binaries = template.function_binaries();
        assert_eq!(binaries.first().map(String::as_str), Some("hr-schema"));
        let mut sorted = binaries.to_vec();
        sorted.sort();
        let mut from_map: Vec<String> = template.functions.values().cloned().collect();
        from_map.sort();
        from_map.dedup();
        assert_eq!(sorted, from_map);
    }

    #[test]
    fn the_repository_template_schedules_hr_daily_and_clickstream_hourly() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let template = Template::load(&root.join("template.yaml")).unwrap();
        let by_id = |id: &str| {
            template
                .schedules
                .iter()
                .find(|s| s.logical_id == id)
                .unwrap_or_else(|| panic!("template.yaml has no schedule {id}"))
        };
        let hr = by_id("HrDailySchedule");
        assert_eq!(hr.target_machine, "HrStateMachine");
        assert_eq!(hr.expression, "cron(30 0 * * ? *)");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&hr.input).unwrap(),
            serde_json::json!({"scheduled_time": "<aws.scheduler.scheduled-time>", "cadence": "daily"})
        );
        let clicks = by_id("ClickstreamHourlySchedule");
        assert_eq!(clicks.target_machine, "ClickstreamStateMachine");
        assert_eq!(clicks.expression, "cron(5 * * * ? *)");
        assert!(clicks.input.contains(r#""cadence": "hourly""#));
        for schedule in &template.schedules {
            assert!(
                schedule.dead_letter_queue,
                "{} has no DLQ",
                schedule.logical_id
            );
            assert!(schedule.retry_policy.is_some(), "{}", schedule.logical_id);
            assert!(
                matches!(schedule.flexible_window, FlexibleWindow::Flexible { maximum_minutes } if maximum_minutes < 60),
                "{}: an hourly run must start before the next is due",
                schedule.logical_id
            );
        }
    }

    #[test]
    fn unknown_substitutions_are_errors() {
        let values = HashMap::from([("A".to_string(), "1".to_string())]);
        assert_eq!(substitute("x ${A} y", &values).unwrap(), "x 1 y");
        assert_eq!(substitute("${B}", &values).unwrap_err(), "B");
    }
}
