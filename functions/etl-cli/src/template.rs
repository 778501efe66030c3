//! Reads the SAM template: which state machines exist, where their ASL files are, and what
//! their `DefinitionSubstitutions` resolve to locally. The template stays the one source of
//! truth for both the cloud deployment and `etl run`.

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

#[derive(Debug, Clone)]
pub struct Template {
    /// In template order: `etl run all` runs them in this order.
    pub machines: Vec<MachineSpec>,
    /// Lambda function logical id → the binary it runs.
    pub functions: HashMap<String, String>,
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

        let mut functions = HashMap::new();
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
        }

        let mut machines = Vec::new();
        for (id, resource) in resources {
            let (Some(id), Some("AWS::Serverless::StateMachine")) =
                (id.as_str(), resource.get("Type").and_then(Yaml::as_str))
            else {
                continue;
            };
            let props = resource
                .get("Properties")
                .ok_or_else(|| TemplateError::Invalid(format!("{id} has no Properties")))?;
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
        Ok(Self {
            machines,
            functions,
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

    pub fn machine_names(&self) -> Vec<&str> {
        self.machines.iter().map(|m| m.name.as_str()).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn unknown_substitutions_are_errors() {
        let values = HashMap::from([("A".to_string(), "1".to_string())]);
        assert_eq!(substitute("x ${A} y", &values).unwrap(), "x 1 y");
        assert_eq!(substitute("${B}", &values).unwrap_err(), "B");
    }
}
