//! One definition that triggers each check and one that passes it; AWS's exact messages
//! where they are known.

use serde_json::{json, Value};

use super::paths::{is_intrinsic, is_valid, PathKind};
use super::*;

/// (code, location, message) of every diagnostic.
fn found(definition: &Value) -> Vec<(String, Option<String>, String)> {
    validate(definition)
        .into_iter()
        .map(|d| (d.code, d.location, d.message))
        .collect()
}

/// As `found`, sorted: for diagnostics whose order is the JSON objects' key order.
fn found_sorted(definition: &Value) -> Vec<(String, Option<String>, String)> {
    let mut all = found(definition);
    all.sort();
    all
}

fn sorted(
    mut diagnostics: Vec<(String, Option<String>, String)>,
) -> Vec<(String, Option<String>, String)> {
    diagnostics.sort();
    diagnostics
}

fn clean(definition: &Value) {
    assert_eq!(validate(definition), vec![], "{definition:#}");
}

/// The only diagnostic: (code, location, message).
fn only(definition: &Value) -> (String, Option<String>, String) {
    let mut all = found(definition);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

fn schema(location: &str, message: &str) -> (String, Option<String>, String) {
    diag(codes::SCHEMA_VALIDATION_FAILED, location, message)
}

fn diag(code: &str, location: &str, message: &str) -> (String, Option<String>, String) {
    (code.into(), Some(location.into()), message.into())
}

/// A machine of one state `A` with these fields (`Type` included).
fn one_state(state: Value) -> Value {
    let mut definition = json!({"StartAt": "A", "States": {}});
    definition["States"]["A"] = state;
    definition
}

fn jsonata_state(state: Value) -> Value {
    let mut definition = one_state(state);
    definition["QueryLanguage"] = json!("JSONata");
    definition
}

#[test]
fn a_minimal_machine_passes() {
    clean(&one_state(json!({"Type": "Pass", "End": true})));
}

#[test]
fn the_full_jsonpath_field_set_passes() {
    clean(&json!({
        "Comment": "c", "Version": "1.0", "TimeoutSeconds": 3600, "QueryLanguage": "JSONPath",
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task", "Comment": "c", "Resource": "arn:aws:states:::lambda:invoke",
                "InputPath": "$.in", "OutputPath": "$", "ResultPath": "$.out",
                "Parameters": {"FunctionName": "f", "Payload.$": "$", "n.$": "States.MathAdd($.a, 1)",
                               "run.$": "$$.Execution.Name", "v.$": "$counter"},
                "ResultSelector": {"p.$": "$.Payload"},
                "TimeoutSeconds": 60, "HeartbeatSeconds": 10, "Credentials": {"RoleArn.$": "$.role"},
                "Assign": {"counter": 1, "last.$": "$.Payload"},
                "Retry": [
                    {"ErrorEquals": ["Lambda.TooManyRequestsException"], "IntervalSeconds": 2,
                     "MaxAttempts": 3, "BackoffRate": 2.0, "MaxDelaySeconds": 30, "JitterStrategy": "FULL"},
                    {"ErrorEquals": ["States.ALL"]}
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed", "ResultPath": "$.error",
                           "Assign": {"failed": true}}],
                "Next": "Choose"
            },
            "Choose": {
                "Type": "Choice", "Default": "Wait",
                "Choices": [
                    {"Variable": "$.n", "NumericGreaterThan": 3, "Next": "Fan", "Assign": {"big": true}},
                    {"And": [{"Variable": "$.s", "StringMatches": "a*"},
                             {"Not": {"Variable": "$.b", "IsPresent": true}}], "Next": "Map"},
                    {"Variable": "$counter", "NumericEqualsPath": "$.limit", "Next": "Done"}
                ]
            },
            "Wait": {"Type": "Wait", "TimestampPath": "$$.Execution.Input.at", "Next": "Done"},
            "Fan": {
                "Type": "Parallel", "ResultSelector": {"first.$": "$[0]"},
                "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Succeed"}}}],
                "Retry": [{"ErrorEquals": ["States.ALL"]}], "Next": "Done"
            },
            "Map": {
                "Type": "Map", "ItemsPath": "$.items[*]", "ItemSelector": {"item.$": "$$.Map.Item.Value"},
                "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "Parameters": {}},
                "ItemBatcher": {"MaxItemsPerBatch": 10}, "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject"},
                "MaxConcurrency": 0, "ToleratedFailurePercentage": 5, "ToleratedFailureCountPath": "$.n",
                "Label": "items",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                    "StartAt": "Each", "States": {"Each": {"Type": "Pass", "End": true}}
                },
                "Next": "Done"
            },
            "Done": {"Type": "Succeed", "InputPath": "$.x"},
            "Failed": {"Type": "Fail", "ErrorPath": "$.error.Error",
                       "CausePath": "States.Format('failed: {}', $.error.Cause)"}
        }
    }));
}

#[test]
fn a_jsonata_machine_with_its_own_fields_passes() {
    clean(&json!({
        "QueryLanguage": "JSONata", "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Arguments": {"FunctionName": "f", "Payload": "{% $states.input %}"},
                "Output": "{% $states.result.Payload %}", "Assign": {"n": "{% $count([1, 2]) %}"},
                "TimeoutSeconds": "{% $states.input.timeout %}",
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "M", "Output": "{% $states.errorOutput %}"}],
                "Next": "C"
            },
            "C": {"Type": "Choice", "Default": "M",
                  "Choices": [{"Condition": "{% $n > 1 %}", "Next": "M", "Output": {"x": 1}}]},
            "M": {"Type": "Map", "Items": "{% [1, 2] %}", "ItemSelector": {"v": "{% $states.context.Map.Item.Value %}"},
                  "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Output": {"a": "{% 'x' & \"}\" %}"}, "End": true}}},
                  "End": true}
        }
    }));
}

#[test]
fn text_that_is_not_a_json_object_is_refused() {
    let parse = validate_str("{not json");
    assert_eq!(parse.len(), 1);
    assert_eq!(parse[0].code, codes::INVALID_JSON_DESCRIPTION);
    assert_eq!(parse[0].location.as_deref(), Some("line 1, column 2"));
    for text in ["", "  ", "[1]"] {
        let diagnostics = validate_str(text);
        assert_eq!(diagnostics.len(), 1, "{text:?}");
        assert_eq!(
            diagnostics[0].message,
            "Definition must be a valid JSON object"
        );
        assert_eq!(diagnostics[0].location, None);
    }
    assert_eq!(
        validate_str(r#"{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}"#),
        vec![]
    );
}

#[test]
fn required_top_level_fields() {
    assert_eq!(
        only(&json!({})),
        schema("/", "These fields are required: [States, StartAt]")
    );
    assert_eq!(
        only(&json!({"States": {"A": {"Type": "Pass", "End": true}}})),
        schema("/", "These fields are required: [StartAt]")
    );
}

#[test]
fn unknown_fields_at_the_top_and_on_states() {
    let mut definition = one_state(json!({"Type": "Pass", "End": true}));
    definition["Coment"] = json!("typo");
    assert_eq!(
        only(&definition),
        schema("/", "Field 'Coment' is not supported")
    );
    assert_eq!(
        found_sorted(&one_state(
            json!({"Type": "Pass", "Resource": "arn:aws:lambda:x:1:function:f", "Nxt": "B", "End": true})
        )),
        sorted(vec![
            schema("/States/A", "Field 'Nxt' is not supported"),
            schema("/States/A", "Field 'Resource' is not supported"),
        ])
    );
    // AWS refuses TimeoutSeconds on every type but Task.
    let map = one_state(json!({"Type": "Map", "TimeoutSeconds": 5, "End": true,
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}));
    assert_eq!(
        only(&map),
        schema("/States/A", "Field 'TimeoutSeconds' is not supported")
    );
}

#[test]
fn a_state_needs_a_known_type() {
    assert_eq!(
        only(&one_state(json!({"End": true}))),
        schema("/States/A", "These fields are required: [Type]")
    );
    assert_eq!(
        only(&one_state(json!({"Type": "Lambda", "End": true}))),
        schema(
            "/States/A/Type",
            "Value should be one of the following: [Pass, Task, Choice, Wait, Succeed, Fail, Parallel, Map]"
        )
    );
}

#[test]
fn a_task_needs_a_resource_arn() {
    assert_eq!(
        only(&one_state(json!({"Type": "Task", "End": true}))),
        schema("/States/A", "These fields are required: [Resource]")
    );
    assert_eq!(
        only(&one_state(
            json!({"Type": "Task", "Resource": "my-function", "End": true})
        )),
        diag(
            codes::INVALID_RESOURCE,
            "/States/A/Resource",
            "The value of the 'Resource' field is not a valid ARN: my-function"
        )
    );
}

#[test]
fn next_or_end_but_not_both() {
    let both = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "B", "End": true}, "B": {"Type": "Succeed"}}});
    assert_eq!(
        only(&both),
        schema(
            "/States/A",
            "Exactly one of these fields is required: [Next, End]"
        )
    );
    let neither = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass"}, "B": {"Type": "Succeed"}}});
    assert_eq!(
        found(&neither)[0],
        schema(
            "/States/A",
            "Exactly one of these fields is required: [Next, End]"
        )
    );
}

#[test]
fn required_fields_of_choice_parallel_and_map() {
    let choice = json!({"StartAt": "A", "States": {"A": {"Type": "Choice", "Default": "B"}, "B": {"Type": "Succeed"}}});
    assert_eq!(
        only(&choice),
        schema("/States/A", "These fields are required: [Choices]")
    );
    assert_eq!(
        only(&one_state(json!({"Type": "Parallel", "End": true}))),
        schema("/States/A", "These fields are required: [Branches]")
    );
    assert_eq!(
        only(&one_state(json!({"Type": "Map", "End": true}))),
        schema("/States/A", "These fields are required: [ItemProcessor]")
    );
    let processor = json!({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}});
    let both = one_state(
        json!({"Type": "Map", "End": true, "ItemProcessor": processor, "Iterator": processor}),
    );
    assert_eq!(
        found(&both)[0],
        schema(
            "/States/A/ItemProcessor",
            "Exactly one of these fields is required: [ItemProcessor, Iterator]"
        )
    );
    let branch = one_state(json!({"Type": "Parallel", "End": true, "Branches": [{"States": {}}]}));
    assert_eq!(
        only(&branch),
        schema(
            "/States/A/Branches[0]",
            "These fields are required: [StartAt]"
        )
    );
}

#[test]
fn dangling_targets_are_named_next_wherever_they_are() {
    let definition = json!({"StartAt": "T", "States": {
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Next": "Ghost1",
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Ghost2"}]},
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.x", "IsPresent": true, "Next": "Ghost3"}],
              "Default": "Ghost4"},
        "Z": {"Type": "Succeed"}}});
    let missing = codes::MISSING_TRANSITION_TARGET;
    assert_eq!(
        found_sorted(&definition),
        sorted(vec![
            diag(
                missing,
                "/States/C/Default",
                "Missing 'Next' target: Ghost4"
            ),
            diag(
                missing,
                "/States/C/Choices[0]/Next",
                "Missing 'Next' target: Ghost3"
            ),
            diag(missing, "/States/T/Next", "Missing 'Next' target: Ghost1"),
            diag(
                missing,
                "/States/T/Catch[0]/Next",
                "Missing 'Next' target: Ghost2"
            ),
            diag(missing, "/States/C", "State \"C\" is not reachable."),
            diag(missing, "/States/Z", "State \"Z\" is not reachable."),
        ])
    );
}

#[test]
fn a_dangling_start_at_leaves_every_state_unreachable() {
    let missing = codes::MISSING_TRANSITION_TARGET;
    assert_eq!(
        found(&json!({"StartAt": "Nope", "States": {"A": {"Type": "Pass", "End": true}}})),
        vec![
            diag(missing, "/StartAt", "Missing 'Next' target: Nope"),
            diag(missing, "/States/A", "State \"A\" is not reachable."),
        ]
    );
    let nested = one_state(json!({"Type": "Map", "End": true,
        "ItemProcessor": {"StartAt": "Nope", "States": {"P": {"Type": "Pass", "End": true}}}}));
    assert_eq!(
        found(&nested),
        vec![
            diag(
                missing,
                "/States/A/ItemProcessor/StartAt",
                "Missing 'Next' target: Nope"
            ),
            diag(
                missing,
                "/States/A/ItemProcessor/States/P",
                "State \"P\" is not reachable."
            ),
        ]
    );
}

#[test]
fn unreachable_states_in_every_scope() {
    let missing = codes::MISSING_TRANSITION_TARGET;
    let definition = json!({"StartAt": "M", "States": {
        "M": {"Type": "Map", "Next": "P",
              "ItemProcessor": {"StartAt": "W", "States": {
                  "W": {"Type": "Pass", "End": true}, "Ghost1": {"Type": "Pass", "End": true}}}},
        "P": {"Type": "Parallel", "End": true,
              "Branches": [{"StartAt": "B", "States": {
                  "B": {"Type": "Pass", "End": true}, "Ghost2": {"Type": "Succeed"}}}]},
        "Orphan": {"Type": "Succeed"}}});
    assert_eq!(
        found(&definition),
        vec![
            diag(
                missing,
                "/States/Orphan",
                "State \"Orphan\" is not reachable."
            ),
            diag(
                missing,
                "/States/M/ItemProcessor/States/Ghost1",
                "State \"Ghost1\" is not reachable."
            ),
            diag(
                missing,
                "/States/P/Branches[0]/States/Ghost2",
                "State \"Ghost2\" is not reachable."
            ),
        ]
    );
    // Transitions stay inside their scope: a branch cannot go to a top-level state.
    let escaping = one_state(json!({"Type": "Parallel", "End": true,
        "Branches": [{"StartAt": "B", "States": {"B": {"Type": "Pass", "Next": "A"}}}]}));
    assert_eq!(
        only(&escaping),
        diag(
            missing,
            "/States/A/Branches[0]/States/B/Next",
            "Missing 'Next' target: A"
        )
    );
}

#[test]
fn missing_end_state_is_top_level_and_replaces_unreachable_reports() {
    let looping = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"},
        "Unused": {"Type": "Pass", "Next": "A"}}});
    assert_eq!(
        found(&looping),
        vec![(
            codes::MISSING_END_STATE.to_string(),
            None,
            "Workflow has no terminal state".to_string()
        )]
    );
    let with_terminal = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"},
        "C": {"Type": "Pass", "End": true}}});
    assert_eq!(
        only(&with_terminal),
        diag(
            codes::MISSING_TRANSITION_TARGET,
            "/States/C",
            "State \"C\" is not reachable."
        )
    );
    let dangling = json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "NOPE"}}});
    let codes_found: Vec<String> = found(&dangling).into_iter().map(|d| d.0).collect();
    assert_eq!(
        codes_found,
        [codes::MISSING_TRANSITION_TARGET, codes::MISSING_END_STATE]
    );
    let nested_loop = one_state(
        json!({"Type": "Map", "End": true, "ItemProcessor": {"StartAt": "X", "States": {
        "X": {"Type": "Pass", "Next": "Y"}, "Y": {"Type": "Pass", "Next": "X"}}}}),
    );
    clean(&nested_loop);
}

#[test]
fn state_names_are_unique_across_scopes() {
    let definition = json!({"StartAt": "M", "States": {
        "M": {"Type": "Map", "Next": "Final",
              "ItemProcessor": {"StartAt": "Final", "States": {"Final": {"Type": "Pass", "End": true}}}},
        "Final": {"Type": "Pass", "End": true}}});
    assert_eq!(
        only(&definition),
        diag(
            codes::DUPLICATE_STATE_NAME,
            "/States/M/ItemProcessor/States/Final",
            "Duplicate State name: Final"
        )
    );
}

#[test]
fn path_fields_must_be_valid_paths() {
    let bad = one_state(json!({"Type": "Pass", "End": true,
        "InputPath": "input", "OutputPath": "$.a..", "ResultPath": "$.items[*]"}));
    assert_eq!(
        found(&bad),
        vec![
            schema(
                "/States/A/InputPath",
                "The value for the field 'InputPath' must be a valid JSONPath"
            ),
            schema(
                "/States/A/OutputPath",
                "The value for the field 'OutputPath' must be a valid JSONPath"
            ),
            schema(
                "/States/A/ResultPath",
                "The value for the field 'ResultPath' must be a valid ReferencePath"
            ),
        ]
    );
    clean(&one_state(json!({"Type": "Pass", "End": true,
        "InputPath": null, "OutputPath": "$.items[?(@.n > 1)]", "ResultPath": null})));
    let context = one_state(json!({"Type": "Pass", "End": true, "ResultPath": "$$.Execution"}));
    assert_eq!(only(&context).1.as_deref(), Some("/States/A/ResultPath"));
}

#[test]
fn path_syntax() {
    for path in [
        "$",
        "$.a",
        "$.a.b[0]",
        "$['a b'].c",
        "$.a[*].b",
        "$..name",
        "$.a[1:3]",
        "$.a[0,2]",
        "$.a[?(@.x == 'y')]",
        "$$.Execution.Id",
        "$var",
        "$var.field[2]",
        "$.a-b",
        "$[0]",
    ] {
        assert!(is_valid(path, PathKind::Path), "{path}");
    }
    for path in [
        "", "a", "$.", "$..", "$.a.", "$a b", "$.a[", "$.a]", "$.a[x]", "$.fn()", "$ .a",
    ] {
        assert!(!is_valid(path, PathKind::Path), "{path}");
    }
    for path in ["$", "$.a.b", "$.a[3]", "$['a'].b", "$$.Map.Item", "$var.x"] {
        assert!(is_valid(path, PathKind::Reference), "{path}");
    }
    for path in [
        "$.a[*]",
        "$..a",
        "$.a[0,1]",
        "$.a[1:2]",
        "$.a[?(@.b)]",
        "$.*",
    ] {
        assert!(!is_valid(path, PathKind::Reference), "{path}");
    }
    assert!(is_valid("$.result", PathKind::Result));
    assert!(!is_valid("$$.Execution", PathKind::Result));
    assert!(!is_valid("$var", PathKind::Result));
}

#[test]
fn intrinsic_syntax() {
    for call in [
        "States.UUID()",
        "States.Format('a {} b', $.x)",
        "States.Format('it\\'s {}', States.JsonToString($.a))",
        "States.ArrayGetItem($.a, 0)",
        "States.MathAdd($.n, -1.5)",
        "States.JsonMerge($.a, $.b, false)",
        "States.Array($.a[0], 'x', null, true)",
    ] {
        assert!(is_intrinsic(call), "{call}");
    }
    for call in [
        "States.Nope($)",
        "States.Format('x', $.a",
        "States.Format('unterminated)",
        "States.MathAdd($.a,)",
        "States.UUID() extra",
        "Format('x')",
        "States.Array(bad)",
    ] {
        assert!(!is_intrinsic(call), "{call}");
    }
}

#[test]
fn dollar_fields_hold_paths_or_intrinsic_calls() {
    let definition = one_state(json!({"Type": "Pass", "End": true, "Parameters": {
        "ok.$": "States.Format('{}', $.a)",
        "nested": {"bad.$": "not a path", "list": [{"intrinsic.$": "States.Nope()"}]},
        "number.$": 5,
        "literal": "$.looks.like.a.path"}}));
    let message = |f: &str| {
        format!("The value for the field '{f}' must be a valid JSONPath or a valid intrinsic function call")
    };
    assert_eq!(
        found_sorted(&definition),
        sorted(vec![
            diag(
                codes::NO_DOLLAR,
                "/States/A/Parameters/literal",
                "The value for the field 'literal' looks like a JSONPath or intrinsic function, but the field name does not end with '.$': it is passed as a literal string"
            ),
            schema("/States/A/Parameters/nested/bad.$", &message("bad.$")),
            schema("/States/A/Parameters/nested/list[0]/intrinsic.$", &message("intrinsic.$")),
            schema("/States/A/Parameters/number.$", &message("number.$")),
        ])
    );
    let no_dollar = validate(&definition)
        .into_iter()
        .find(|d| d.code == codes::NO_DOLLAR);
    assert_eq!(
        no_dollar.map(|d| d.severity),
        Some(Severity::Warning),
        "NO_DOLLAR is a warning"
    );
    let assign = one_state(json!({"Type": "Pass", "End": true, "Assign": {"Variable.$": "Test"}}));
    assert_eq!(
        only(&assign).1.as_deref(),
        Some("/States/A/Assign/Variable.$")
    );
}

#[test]
fn choice_rules() {
    let rules = |choices: Value| json!({"StartAt": "C", "States": {"C": {"Type": "Choice", "Choices": choices}, "N": {"Type": "Succeed"}}});
    let one_comparison =
        "A Choice Rule must have exactly one comparison operator, or one of And, Or, Not";
    assert_eq!(
        only(&rules(json!([{"Variable": "$.x", "Next": "N"}]))),
        schema("/States/C/Choices[0]", one_comparison)
    );
    assert_eq!(
        only(&rules(
            json!([{"Variable": "$.x", "IsNull": true, "IsPresent": true, "Next": "N"}])
        )),
        schema("/States/C/Choices[0]", one_comparison)
    );
    assert_eq!(
        found(&rules(
            json!([{"Variable": "$.x", "StringEqual": "a", "Next": "N"}])
        )),
        vec![
            schema(
                "/States/C/Choices[0]",
                "Field 'StringEqual' is not supported"
            ),
            schema("/States/C/Choices[0]", one_comparison),
        ]
    );
    assert_eq!(
        only(&rules(json!([{"StringEquals": "a", "Next": "N"}]))),
        schema(
            "/States/C/Choices[0]",
            "These fields are required: [Variable]"
        )
    );
    assert_eq!(
        found(&rules(
            json!([{"Variable": "x", "NumericEquals": "1", "Next": "N"}])
        )),
        vec![
            schema(
                "/States/C/Choices[0]/Variable",
                "The value for the field 'Variable' must be a valid JSONPath"
            ),
            schema(
                "/States/C/Choices[0]/NumericEquals",
                "Expected value of type [NUMBER]"
            ),
        ]
    );
    assert_eq!(
        only(&rules(
            json!([{"And": [{"Variable": "$.a", "IsPresent": true, "Next": "N"}], "Next": "N"}])
        )),
        schema(
            "/States/C/Choices[0]/And[0]",
            "Field 'Next' is not supported"
        )
    );
    // N is then unreachable too.
    assert_eq!(
        found(&rules(json!([{"Variable": "$.a", "IsPresent": true}])))[0].2,
        "These fields are required: [Next]"
    );
    clean(&rules(
        json!([{"Or": [{"Variable": "$.a", "BooleanEquals": true},
                                {"Not": {"Variable": "$.b", "TimestampLessThanPath": "$.c"}}], "Next": "N"}]),
    ));
}

#[test]
fn retriers_and_catchers() {
    let task = |extra: Value| {
        let mut state =
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true});
        for (k, v) in extra.as_object().unwrap() {
            state[k] = v.clone();
        }
        json!({"StartAt": "T", "States": {"T": state, "H": {"Type": "Succeed"}}})
    };
    let reachable_h = |extra: Value| {
        let mut definition = task(extra);
        definition["States"]["T"]["Catch"] = json!([{"ErrorEquals": ["States.ALL"], "Next": "H"}]);
        definition
    };
    assert_eq!(
        only(&reachable_h(json!({"Retry": [{"MaxAttempts": 2}]}))),
        schema(
            "/States/T/Retry[0]",
            "These fields are required: [ErrorEquals]"
        )
    );
    assert_eq!(
        only(&reachable_h(json!({"Retry": [{"ErrorEquals": []}]}))),
        schema(
            "/States/T/Retry[0]/ErrorEquals",
            "The field 'ErrorEquals' must contain at least one item"
        )
    );
    assert_eq!(
        only(&reachable_h(
            json!({"Retry": [{"ErrorEquals": ["States.ALL", "X"]}]})
        )),
        schema(
            "/States/T/Retry[0]/ErrorEquals",
            "'States.ALL' must appear alone in the 'ErrorEquals' array"
        )
    );
    assert_eq!(
        only(&reachable_h(
            json!({"Retry": [{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}]})
        )),
        schema(
            "/States/T/Retry[0]/ErrorEquals",
            "The 'Retry' element matching 'States.ALL' must be the last one"
        )
    );
    let catch_all_first = task(json!({"Catch": [
        {"ErrorEquals": ["States.ALL"], "Next": "H"}, {"ErrorEquals": ["X"], "Next": "H"}]}));
    assert_eq!(
        only(&catch_all_first),
        schema(
            "/States/T/Catch[0]/ErrorEquals",
            "The 'Catch' element matching 'States.ALL' must be the last one"
        )
    );
    assert_eq!(
        found(&reachable_h(
            json!({"Retry": [{"ErrorEquals": ["X"], "BackoffRate": 0.5, "JitterStrategy": "SOME"}]})
        )),
        vec![
            schema("/States/T/Retry[0]/BackoffRate", "Minimum value is 1"),
            schema(
                "/States/T/Retry[0]/JitterStrategy",
                "Value should be one of the following: [FULL, NONE]"
            ),
        ]
    );
    assert_eq!(
        found(&task(json!({"Catch": [{"ErrorEquals": ["X"]}]})))[0].2,
        "These fields are required: [Next]"
    );
    let pass_with_retry =
        one_state(json!({"Type": "Pass", "End": true, "Retry": [{"ErrorEquals": ["X"]}]}));
    assert_eq!(
        only(&pass_with_retry),
        schema("/States/A", "Field 'Retry' is not supported")
    );
}

#[test]
fn field_types_and_ranges() {
    let task = |extra: Value| {
        let mut state =
            json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true});
        for (k, v) in extra.as_object().unwrap() {
            state[k] = v.clone();
        }
        one_state(state)
    };
    assert_eq!(
        only(&task(json!({"TimeoutSeconds": 0}))),
        schema("/States/A/TimeoutSeconds", "Minimum value is 1")
    );
    assert_eq!(
        only(&task(json!({"TimeoutSeconds": "10"}))),
        schema(
            "/States/A/TimeoutSeconds",
            "Expected value of type [INTEGER]"
        )
    );
    assert_eq!(
        only(&task(json!({"TimeoutSeconds": 10, "HeartbeatSeconds": 10}))),
        schema(
            "/States/A/HeartbeatSeconds",
            "The field 'HeartbeatSeconds' must be smaller than 'TimeoutSeconds'"
        )
    );
    assert_eq!(
        only(&task(
            json!({"TimeoutSeconds": 10, "TimeoutSecondsPath": "$.t"})
        )),
        schema(
            "/States/A/TimeoutSeconds",
            "Exactly one of these fields is required: [TimeoutSeconds, TimeoutSecondsPath]"
        )
    );
    let map = |extra: Value| {
        let mut state = json!({"Type": "Map", "End": true,
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}});
        for (k, v) in extra.as_object().unwrap() {
            state[k] = v.clone();
        }
        one_state(state)
    };
    assert_eq!(
        only(&map(json!({"MaxConcurrency": -1}))),
        schema("/States/A/MaxConcurrency", "Minimum value is 0")
    );
    assert_eq!(
        only(&map(
            json!({"MaxConcurrency": 2, "MaxConcurrencyPath": "$.n"})
        ))
        .1
        .as_deref(),
        Some("/States/A/MaxConcurrency")
    );
    assert_eq!(
        only(&map(json!({"ToleratedFailurePercentage": 150}))),
        schema(
            "/States/A/ToleratedFailurePercentage",
            "Maximum value is 100"
        )
    );
    assert_eq!(
        only(&map(json!({"MaxConcurrencyPath": "$.limits[*]"}))).2,
        "The value for the field 'MaxConcurrencyPath' must be a valid ReferencePath"
    );
    clean(&map(
        json!({"MaxConcurrency": 9_223_372_036_854_775_807_i64}),
    ));
}

#[test]
fn wait_takes_exactly_one_duration() {
    let fields =
        "Exactly one of these fields is required: [Seconds, SecondsPath, Timestamp, TimestampPath]";
    assert_eq!(
        only(&one_state(json!({"Type": "Wait", "End": true}))),
        schema("/States/A", fields)
    );
    assert_eq!(
        only(&one_state(
            json!({"Type": "Wait", "Seconds": 5, "SecondsPath": "$.s", "End": true})
        )),
        schema("/States/A/Seconds", fields)
    );
    assert_eq!(
        only(&one_state(
            json!({"Type": "Wait", "Timestamp": "tomorrow", "End": true})
        )),
        schema(
            "/States/A/Timestamp",
            "The value for the field 'Timestamp' must be a valid RFC3339 timestamp"
        )
    );
    clean(&one_state(
        json!({"Type": "Wait", "Timestamp": "2026-11-25T00:00:00Z", "End": true}),
    ));
    clean(&one_state(
        json!({"Type": "Wait", "Seconds": 0, "End": true}),
    ));
}

#[test]
fn fail_fields() {
    assert_eq!(
        only(&one_state(
            json!({"Type": "Fail", "Error": "E", "ErrorPath": "$.e"})
        ))
        .1
        .as_deref(),
        Some("/States/A/Error")
    );
    assert_eq!(
        only(&one_state(json!({"Type": "Fail", "CausePath": "States.Nope()"}))),
        schema(
            "/States/A/CausePath",
            "The value for the field 'CausePath' must be a valid JSONPath or a valid intrinsic function call"
        )
    );
    let warning = validate(&one_state(
        json!({"Type": "Fail", "Error": "$.error.Error"}),
    ));
    assert_eq!(warning.len(), 1);
    assert_eq!(
        (warning[0].severity, warning[0].code.as_str()),
        (Severity::Warning, codes::NO_PATH)
    );
}

#[test]
fn a_pass_result_with_dollar_keys_is_static() {
    let diagnostics = validate(&one_state(
        json!({"Type": "Pass", "End": true, "Result": {"a": {"b.$": "$.x"}}}),
    ));
    assert_eq!(diagnostics.len(), 1);
    assert_eq!(diagnostics[0].code, codes::PASS_RESULT_IS_STATIC);
    assert_eq!(diagnostics[0].severity, Severity::Warning);
    assert_eq!(
        diagnostics[0].location.as_deref(),
        Some("/States/A/Result/a/b.$")
    );
}

#[test]
fn jsonpath_fields_in_a_jsonata_state_and_the_reverse() {
    assert_eq!(
        found(&jsonata_state(json!({"Type": "Pass", "End": true, "InputPath": "$.a", "ResultPath": "$.c"}))),
        vec![
            schema("/States/A", "The QueryLanguage is set to 'JSONata', but field 'InputPath' is only supported for the 'JSONPath' QueryLanguage"),
            schema("/States/A", "The QueryLanguage is set to 'JSONata', but field 'ResultPath' is only supported for the 'JSONPath' QueryLanguage"),
        ]
    );
    assert_eq!(
        only(&one_state(json!({"Type": "Pass", "End": true, "Output": {"v": 1}}))),
        schema("/States/A", "The QueryLanguage is set to 'JSONPath', but field 'Output' is only supported for the 'JSONata' QueryLanguage")
    );
    assert_eq!(
        only(&one_state(json!({"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": true, "Arguments": {}}))).2,
        "The QueryLanguage is set to 'JSONPath', but field 'Arguments' is only supported for the 'JSONata' QueryLanguage"
    );
    // A state may opt in to JSONata on its own.
    clean(&one_state(
        json!({"Type": "Pass", "QueryLanguage": "JSONata", "End": true, "Output": "{% 1 %}"}),
    ));
}

#[test]
fn query_language_declarations() {
    assert_eq!(
        only(&jsonata_state(
            json!({"Type": "Pass", "QueryLanguage": "JSONPath", "End": true, "Output": 1})
        )),
        schema(
            "/States/A",
            "'QueryLanguage' can not be 'JSONPath' if set to 'JSONata' for whole state machine"
        )
    );
    assert_eq!(
        only(&one_state(
            json!({"Type": "Pass", "QueryLanguage": "jsonata", "End": true})
        )),
        schema(
            "/States/A/QueryLanguage",
            "Value should be one of the following: [JSONPath, JSONata]"
        )
    );
    let mut top = one_state(json!({"Type": "Pass", "End": true}));
    top["QueryLanguage"] = json!(5);
    assert_eq!(
        only(&top),
        schema("/QueryLanguage", "Expected value of type [STRING]")
    );
    let processor_language = one_state(json!({"Type": "Map", "End": true,
        "ItemProcessor": {"QueryLanguage": "JSONata", "StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}}));
    assert_eq!(
        only(&processor_language),
        schema(
            "/States/A/ItemProcessor",
            "Field 'QueryLanguage' is not supported"
        )
    );
    // Nested states inherit the machine's language, not their Map's.
    let inherits = one_state(
        json!({"Type": "Map", "QueryLanguage": "JSONata", "Items": "{% [1] %}", "End": true,
        "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Output": 1, "End": true}}}}),
    );
    assert_eq!(
        only(&inherits).1.as_deref(),
        Some("/States/A/ItemProcessor/States/P")
    );
}

#[test]
fn jsonata_expressions_must_be_balanced() {
    let output = |expression: &str| {
        jsonata_state(json!({"Type": "Pass", "End": true, "Output": expression}))
    };
    for (expression, message) in [
        ("{% a[1,2) %}", "Expected \"]\", got \")\""),
        (
            "{% \"unterminated %}",
            "String literal must be terminated by a matching quote",
        ),
        ("{% $f(1 %}", "Unexpected end of expression"),
        ("{%  %}", "Unexpected end of expression"),
        ("{% 1) %}", "Syntax error: \")\""),
        ("{% /* open %}", "Comment has no closing tag"),
    ] {
        assert_eq!(
            only(&output(expression)),
            diag(
                codes::INVALID_JSONATA_EXPRESSION,
                "/States/A/Output",
                message
            ),
            "{expression}"
        );
    }
    clean(&output(
        "{% $states.input.items[0].('(' & \"]\") /* ) */ %}",
    ));
    // Not an expression: a literal string that happens to start with {%.
    clean(&output("{% literal"));
    let nested = jsonata_state(json!({"Type": "Pass", "End": true, "Assign": {"x": ["{% [ %}"]}}));
    assert_eq!(only(&nested).1.as_deref(), Some("/States/A/Assign/x[0]"));
}

#[test]
fn diagnostics_display_as_one_line() {
    let diagnostic = Diagnostic {
        severity: Severity::Error,
        code: codes::MISSING_TRANSITION_TARGET.into(),
        message: "Missing 'Next' target: B".into(),
        location: Some("/States/A/Next".into()),
    };
    assert_eq!(
        diagnostic.to_string(),
        "ERROR MISSING_TRANSITION_TARGET at /States/A/Next: Missing 'Next' target: B"
    );
    let no_location = Diagnostic {
        severity: Severity::Warning,
        code: codes::NO_PATH.into(),
        message: "m".into(),
        location: None,
    };
    assert_eq!(no_location.to_string(), "WARNING NO_PATH: m");
}

#[test]
fn variable_names_and_scopes() {
    let assign = |names: Value| one_state(json!({"Type": "Pass", "End": true, "Assign": names}));
    for name in ["1x", "a-b", "states", &"v".repeat(81)] {
        let (code, location, message) = only(&assign(json!({ name: 1 })));
        assert_eq!(
            (code.as_str(), location.as_deref()),
            (codes::SCHEMA_VALIDATION_FAILED, Some("/States/A/Assign")),
            "{name}"
        );
        assert!(
            message.starts_with(&format!("Invalid variable name '{name}'")),
            "{message}"
        );
    }
    clean(&assign(json!({"_x1": 1, "été": 2, "from.$": "$.a"})));
    let inner_assigns_outer = json!({"StartAt": "A", "States": {
        "A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "M"},
        "M": {"Type": "Map", "End": true, "ItemProcessor": {"StartAt": "I", "States": {
            "I": {"Type": "Pass", "Assign": {"x.$": "$", "y": 2}, "End": true}}}}}});
    assert_eq!(
        only(&inner_assigns_outer),
        schema(
            "/States/M/ItemProcessor/States/I/Assign",
            "Variable 'x' is assigned in an outer scope and cannot be assigned inside a Map or Parallel state"
        )
    );
    let sibling_branches = one_state(json!({"Type": "Parallel", "End": true, "Branches": [
        {"StartAt": "B1", "States": {"B1": {"Type": "Pass", "Assign": {"x": 1}, "End": true}}},
        {"StartAt": "B2", "States": {"B2": {"Type": "Pass", "Assign": {"x": 2}, "End": true}}}]}));
    clean(&sibling_branches);
}
