//! CloudFormation intrinsics (short `!Tag` and long `{"Fn::X": ..}` forms), parameters,
//! pseudo parameters and conditions, resolved against a [`Deployment`] into plain JSON.
//! `AWS::NoValue` resolves to `None` and disappears from the list or mapping holding it.

use std::cell::RefCell;
use std::collections::BTreeMap;

use serde_json::Value as Json;
use serde_yaml::{Mapping, Value as Yaml};

use crate::{Deployment, TemplateError};

pub(crate) struct Resolver<'a> {
    pub(crate) deployment: &'a Deployment,
    parameters: BTreeMap<String, Json>,
    resources: &'a Mapping,
    condition_defs: &'a Mapping,
    // Filled lazily: a condition may refer to another with `!Condition`.
    conditions: RefCell<BTreeMap<String, bool>>,
    evaluating: RefCell<Vec<String>>,
}

pub(crate) fn get<'v>(v: &'v Yaml, key: &str) -> Option<&'v Yaml> {
    v.as_mapping().and_then(|m| m.get(key))
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(root: &'a Yaml, deployment: &'a Deployment) -> Result<Self, TemplateError> {
        static EMPTY: std::sync::OnceLock<Mapping> = std::sync::OnceLock::new();
        let empty = EMPTY.get_or_init(Mapping::new);
        let section = |name: &str| get(root, name).and_then(Yaml::as_mapping).unwrap_or(empty);
        Ok(Resolver {
            deployment,
            parameters: parameters(section("Parameters"), deployment)?,
            resources: section("Resources"),
            condition_defs: section("Conditions"),
            conditions: RefCell::new(BTreeMap::new()),
            evaluating: RefCell::new(Vec::new()),
        })
    }

    pub(crate) fn resources(&self) -> impl Iterator<Item = (&'a str, &'a Yaml)> {
        self.resources
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?, v)))
    }

    /// Whether a resource exists in this deployment (its `Condition` attribute holds).
    pub(crate) fn deployed(&self, resource: &Yaml) -> Result<bool, TemplateError> {
        match get(resource, "Condition").and_then(Yaml::as_str) {
            Some(name) => self.condition(name),
            None => Ok(true),
        }
    }

    pub(crate) fn condition(&self, name: &str) -> Result<bool, TemplateError> {
        if let Some(&v) = self.conditions.borrow().get(name) {
            return Ok(v);
        }
        let def = self
            .condition_defs
            .get(name)
            .ok_or_else(|| TemplateError::BadCondition(name.into()))?;
        if self.evaluating.borrow().iter().any(|n| n == name) {
            return Err(TemplateError::BadCondition(name.into()));
        }
        self.evaluating.borrow_mut().push(name.into());
        let value = self
            .resolve(def)
            .map(|v| v.as_ref().and_then(Json::as_bool));
        self.evaluating.borrow_mut().pop();
        let value = value?.ok_or_else(|| TemplateError::BadCondition(name.into()))?;
        self.conditions.borrow_mut().insert(name.into(), value);
        Ok(value)
    }

    /// Resolves every intrinsic in `v`; `None` is `AWS::NoValue`.
    pub(crate) fn resolve(&self, v: &Yaml) -> Result<Option<Json>, TemplateError> {
        Ok(Some(match v {
            Yaml::Null => Json::Null,
            Yaml::Bool(b) => Json::Bool(*b),
            Yaml::Number(n) => serde_json::to_value(n)
                .map_err(|e| TemplateError::Shape(format!("number {n}: {e}")))?,
            Yaml::String(s) => Json::String(s.clone()),
            Yaml::Sequence(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.extend(self.resolve(item)?);
                }
                Json::Array(out)
            }
            Yaml::Tagged(t) => {
                let tag = t.tag.to_string();
                return self.intrinsic(tag.trim_start_matches('!'), &t.value);
            }
            Yaml::Mapping(m) => {
                if let Some((name, arg)) = long_form(m) {
                    return self.intrinsic(name, arg);
                }
                let mut out = serde_json::Map::new();
                for (k, v) in m {
                    let key = scalar_key(k)?;
                    if let Some(v) = self.resolve(v)? {
                        out.insert(key, v);
                    }
                }
                Json::Object(out)
            }
        }))
    }

    fn intrinsic(&self, name: &str, arg: &Yaml) -> Result<Option<Json>, TemplateError> {
        let bad = |what: &str| TemplateError::Shape(format!("!{name}: {what}"));
        let args = || arg.as_sequence().ok_or_else(|| bad("expects a list"));
        Ok(Some(match name {
            "Ref" => return self.reference(arg.as_str().ok_or_else(|| bad("expects a name"))?),
            "GetAtt" => Json::String(self.get_att(arg)?),
            "Sub" => Json::String(self.sub(arg)?),
            "Condition" => Json::Bool(self.condition(arg.as_str().ok_or_else(|| bad("name"))?)?),
            "If" => {
                let [cond, yes, no] = args()?.as_slice() else {
                    return Err(bad("expects [condition, then, else]"));
                };
                let cond = cond.as_str().ok_or_else(|| bad("condition name"))?;
                return self.resolve(if self.condition(cond)? { yes } else { no });
            }
            "Not" | "And" | "Or" => Json::Bool(self.logic(name, args()?)?),
            "Equals" => {
                let [a, b] = args()?.as_slice() else {
                    return Err(bad("expects two values"));
                };
                Json::Bool(self.resolve(a)? == self.resolve(b)?)
            }
            "Join" => Json::String(self.join(args()?)?),
            "Select" => self.select(args()?)?,
            "Split" => self.split(args()?)?,
            other => return Err(TemplateError::UnsupportedIntrinsic(other.into())),
        }))
    }

    fn logic(&self, name: &str, args: &[Yaml]) -> Result<bool, TemplateError> {
        let mut values = Vec::new();
        for a in args {
            let v = self.resolve(a)?.and_then(|v| v.as_bool());
            values
                .push(v.ok_or_else(|| TemplateError::Shape(format!("!{name}: not a condition")))?);
        }
        Ok(match name {
            "Not" => !values.first().copied().unwrap_or(false),
            "And" => values.iter().all(|&v| v),
            _ => values.iter().any(|&v| v),
        })
    }

    fn join(&self, args: &[Yaml]) -> Result<String, TemplateError> {
        let bad = || TemplateError::Shape("!Join expects [delimiter, list]".into());
        let [delim, list] = args else {
            return Err(bad());
        };
        let delim = delim.as_str().ok_or_else(bad)?;
        let Some(Json::Array(items)) = self.resolve(list)? else {
            return Err(bad());
        };
        let parts: Vec<String> = items.iter().map(json_text).collect::<Result<_, _>>()?;
        Ok(parts.join(delim))
    }

    fn select(&self, args: &[Yaml]) -> Result<Json, TemplateError> {
        let bad = || TemplateError::Shape("!Select expects [index, list]".into());
        let [index, list] = args else {
            return Err(bad());
        };
        let index: usize = json_text(&self.resolve(index)?.ok_or_else(bad)?)?
            .parse()
            .map_err(|_| bad())?;
        match self.resolve(list)? {
            Some(Json::Array(items)) => items.get(index).cloned().ok_or_else(bad),
            _ => Err(bad()),
        }
    }

    fn split(&self, args: &[Yaml]) -> Result<Json, TemplateError> {
        let bad = || TemplateError::Shape("!Split expects [delimiter, string]".into());
        let [delim, text] = args else {
            return Err(bad());
        };
        let delim = delim.as_str().ok_or_else(bad)?;
        let text = json_text(&self.resolve(text)?.ok_or_else(bad)?)?;
        Ok(Json::Array(
            text.split(delim).map(|s| Json::String(s.into())).collect(),
        ))
    }

    fn sub(&self, arg: &Yaml) -> Result<String, TemplateError> {
        let bad = || TemplateError::Shape("!Sub expects a string or [string, mapping]".into());
        let (text, vars) = match arg {
            Yaml::String(s) => (s.as_str(), None),
            Yaml::Sequence(items) => match items.as_slice() {
                [Yaml::String(s), Yaml::Mapping(m)] => (s.as_str(), Some(m)),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        };
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(bad)?;
            let var = &after[..end];
            if let Some(literal) = var.strip_prefix('!') {
                // `${!Name}` is how a template writes a literal `${Name}`.
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else {
                out.push_str(&self.sub_variable(var, vars)?);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn sub_variable(&self, var: &str, vars: Option<&Mapping>) -> Result<String, TemplateError> {
        if let Some(v) = vars.and_then(|m| m.get(var)) {
            let v = self.resolve(v)?;
            return json_text(
                &v.ok_or_else(|| TemplateError::Shape(format!("${{{var}}} is NoValue")))?,
            );
        }
        if var.contains('.') {
            return self.get_att(&Yaml::String(var.into()));
        }
        let v = self.reference(var)?;
        json_text(&v.ok_or_else(|| TemplateError::Shape(format!("${{{var}}} is NoValue")))?)
    }

    fn reference(&self, name: &str) -> Result<Option<Json>, TemplateError> {
        let d = self.deployment;
        let s = |v: &str| Ok(Some(Json::String(v.to_string())));
        match name {
            "AWS::NoValue" => return Ok(None),
            "AWS::Region" => return s(&d.region),
            "AWS::AccountId" => return s(&d.account_id),
            "AWS::Partition" => return s(&d.partition),
            "AWS::StackName" => return s(&d.stack_name),
            "AWS::URLSuffix" => return s("amazonaws.com"),
            _ => {}
        }
        if let Some(v) = self.parameters.get(name) {
            return Ok(Some(v.clone()));
        }
        let resource = self
            .resources
            .get(name)
            .ok_or_else(|| TemplateError::UnknownReference(name.into()))?;
        s(&self.resource_ref(name, resource_type(resource)))
    }

    /// What `!Ref` of a resource returns, by type; other types return their physical name.
    fn resource_ref(&self, logical_id: &str, ty: &str) -> String {
        let d = self.deployment;
        let name = d.physical_name(logical_id);
        match ty {
            "AWS::IAM::ManagedPolicy" => {
                format!("arn:{}:iam::{}:policy/{name}", d.partition, d.account_id)
            }
            "AWS::Serverless::StateMachine" | "AWS::StepFunctions::StateMachine" => {
                self.arn_of(logical_id, ty)
            }
            "AWS::SQS::Queue" => format!(
                "https://sqs.{}.amazonaws.com/{}/{name}",
                d.region, d.account_id
            ),
            _ => name,
        }
    }

    fn get_att(&self, arg: &Yaml) -> Result<String, TemplateError> {
        let bad = || TemplateError::Shape("!GetAtt expects Resource.Attribute".into());
        let (id, attr) = match arg {
            Yaml::String(s) => s.split_once('.').ok_or_else(bad)?,
            Yaml::Sequence(items) => match items.as_slice() {
                [Yaml::String(a), Yaml::String(b)] => (a.as_str(), b.as_str()),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        };
        let resource = self
            .resources
            .get(id)
            .ok_or_else(|| TemplateError::UnknownReference(id.into()))?;
        if attr == "Arn" {
            return Ok(self.arn_of(id, resource_type(resource)));
        }
        // Other attributes (endpoints, ids) never reach a policy here; a stand-in keeps
        // templates that mention them loadable.
        Ok(format!("{}.{attr}", self.deployment.physical_name(id)))
    }

    /// `!GetAtt X.Arn` by resource type. Names are the Deployment's physical names (the
    /// logical id unless given), so the ARNs are synthetic but consistent.
    pub(crate) fn arn_of(&self, logical_id: &str, ty: &str) -> String {
        let d = self.deployment;
        let (p, r, a) = (&d.partition, &d.region, &d.account_id);
        let name = d.physical_name(logical_id);
        match ty {
            "AWS::S3::Bucket" => format!("arn:{p}:s3:::{name}"),
            "AWS::Logs::LogGroup" => format!("arn:{p}:logs:{r}:{a}:log-group:{name}:*"),
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => {
                format!("arn:{p}:lambda:{r}:{a}:function:{name}")
            }
            "AWS::IAM::Role" => format!("arn:{p}:iam::{a}:role/{name}"),
            "AWS::IAM::ManagedPolicy" => format!("arn:{p}:iam::{a}:policy/{name}"),
            "AWS::Serverless::StateMachine" | "AWS::StepFunctions::StateMachine" => {
                format!("arn:{p}:states:{r}:{a}:stateMachine:{name}")
            }
            _ => {
                let service = ty.split("::").nth(1).unwrap_or("unknown").to_lowercase();
                format!("arn:{p}:{service}:{r}:{a}:{name}")
            }
        }
    }
}

pub(crate) fn resource_type(resource: &Yaml) -> &str {
    get(resource, "Type").and_then(Yaml::as_str).unwrap_or("")
}

/// `{"Ref": x}`, `{"Fn::Sub": x}`, `{"Condition": x}` — a one-key mapping naming an
/// intrinsic. (`Condition` alone only occurs in the Conditions section.)
fn long_form(m: &Mapping) -> Option<(&str, &Yaml)> {
    if m.len() != 1 {
        return None;
    }
    let (k, v) = m.iter().next()?;
    let k = k.as_str()?;
    match k {
        "Ref" | "Condition" => Some((k, v)),
        _ => k.strip_prefix("Fn::").map(|name| (name, v)),
    }
}

fn scalar_key(k: &Yaml) -> Result<String, TemplateError> {
    match k {
        Yaml::String(s) => Ok(s.clone()),
        Yaml::Number(n) => Ok(n.to_string()),
        Yaml::Bool(b) => Ok(b.to_string()),
        other => Err(TemplateError::Shape(format!(
            "mapping key {other:?} is not a scalar"
        ))),
    }
}

pub(crate) fn json_text(v: &Json) -> Result<String, TemplateError> {
    match v {
        Json::String(s) => Ok(s.clone()),
        Json::Number(n) => Ok(n.to_string()),
        Json::Bool(b) => Ok(b.to_string()),
        other => Err(TemplateError::Shape(format!("{other} is not a string"))),
    }
}

/// Every declared parameter's value: the Deployment's, else the Default. List types become
/// JSON arrays (an empty value, an empty list).
fn parameters(decl: &Mapping, d: &Deployment) -> Result<BTreeMap<String, Json>, TemplateError> {
    for name in d.parameters.keys() {
        if !decl.contains_key(name.as_str()) {
            return Err(TemplateError::UnknownParameter(name.clone()));
        }
    }
    let mut out = BTreeMap::new();
    for (name, spec) in decl {
        let name = scalar_key(name)?;
        let value = match d.parameters.get(&name) {
            Some(v) => v.clone(),
            None => match get(spec, "Default") {
                Some(Yaml::String(s)) => s.clone(),
                Some(Yaml::Number(n)) => n.to_string(),
                Some(Yaml::Bool(b)) => b.to_string(),
                _ => return Err(TemplateError::MissingParameter(name)),
            },
        };
        let ty = get(spec, "Type").and_then(Yaml::as_str).unwrap_or("String");
        let value = if ty == "CommaDelimitedList" || ty.starts_with("List<") {
            let items = value.split(',').map(str::trim).filter(|s| !s.is_empty());
            Json::Array(items.map(|s| Json::String(s.into())).collect())
        } else {
            Json::String(value)
        };
        out.insert(name, value);
    }
    Ok(out)
}
