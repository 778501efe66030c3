//! The documented JSONata behaviour of Step Functions that can be checked without running a
//! state machine. Each test names its source.

use serde_json::{json, Map, Value};

use super::*;
use crate::Failure;

const DOC: &str = "https://docs.aws.amazon.com/step-functions/latest/dg/transforming-data.html";

fn vars(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn eval_in(source: &str, scope: &Scope<'_>) -> Result<Value, QueryError> {
    evaluate_template(&json!(source), &FieldPath::new("Output"), scope)
}

fn eval(source: &str, input: &Value) -> Result<Value, QueryError> {
    eval_in(source, &Scope::new(input, &()))
}

fn ok(source: &str, input: &Value) -> Value {
    eval(source, input).unwrap_or_else(|e| panic!("{source}: {e} ({DOC})"))
}

fn cause(source: &str, input: &Value) -> String {
    match eval(source, input) {
        Ok(value) => panic!("{source} gave {value}, expected a failure"),
        Err(error) => Failure::from(error).cause,
    }
}

// "Sample after conversion to JSONata": input {"title": "Doctor"}, customerName = "María".
#[test]
fn doc_conversion_sample_arguments() {
    let input = json!({"title": "Doctor"});
    let variables = vars(json!({"customerName": "María"}));
    let scope = Scope::new(&input, &variables);
    let arguments = json!({
        "static": "Hello",
        "title": "{% $states.input.title %}",
        "name": "{% $customerName %}",
        "not-evaluated": "$customerName"
    });
    let out = evaluate_template(&arguments, &FieldPath::new("Arguments"), &scope).unwrap();
    assert_eq!(
        out,
        json!({"static": "Hello", "title": "Doctor", "name": "María", "not-evaluated": "$customerName"})
    );
}

// "Example: Input and Output".
#[test]
fn doc_input_and_output_example() {
    let input = json!({"customer": {"firstName": "Martha", "lastName": "Rivera"}, "order": {"items": 7, "total": 27.91}});
    let output = json!({
        "lastName": "{% 'Last=>' & $states.input.customer.lastName %}",
        "orderValue": "{% $states.input.order.total %}"
    });
    let out =
        evaluate_template(&output, &FieldPath::new("Output"), &Scope::new(&input, &())).unwrap();
    assert_eq!(
        out,
        json!({"lastName": "Last=>Rivera", "orderValue": 27.91})
    );
}

// "Example: Filtering with JSONata".
#[test]
fn doc_filtering_example() {
    let input = json!({"products": [
        {"calories": 140, "flavour": "Cola", "name": "Product-1"},
        {"calories": 0, "flavour": "Cola", "name": "Product-2"},
        {"calories": 160, "flavour": "Orange", "name": "Product-3"},
        {"calories": 100, "flavour": "Orange", "name": "Product-4"},
        {"calories": 0, "flavour": "Lime", "name": "Product-5"}
    ]});
    let out = ok("{% $states.input.products[calories=0] %}", &input);
    assert_eq!(
        out,
        json!([
            {"calories": 0, "flavour": "Cola", "name": "Product-2"},
            {"calories": 0, "flavour": "Lime", "name": "Product-5"}
        ])
    );
}

// "Writing JSONata expressions in JSON strings": whole-string delimiters, no outer spaces.
#[test]
fn delimiters_must_enclose_the_whole_string() {
    assert_eq!(expression("{% $x %}"), Some("$x"));
    assert_eq!(expression("{%$x%}"), Some("$x"));
    assert_eq!(expression(" {% $x %}"), None);
    assert_eq!(expression("{% $x %} "), None);
    assert_eq!(expression("Hello {% $x %}"), None);
    assert_eq!(expression("{% incomplete"), None);
    let input = json!({});
    assert_eq!(ok(" {% 1 + 1 %}", &input), json!(" {% 1 + 1 %}"));
    assert_eq!(ok("plain", &input), json!("plain"));
}

// "Writing JSONata expressions …": `"Items": [1, "{% $two %}", 3]`.
#[test]
fn expressions_inside_arrays_and_nested_objects() {
    let input = json!({"a": {"b": [10, 20]}});
    let variables = vars(json!({"two": 2}));
    let scope = Scope::new(&input, &variables);
    let items = evaluate_template(
        &json!([1, "{% $two %}", 3]),
        &FieldPath::new("Items"),
        &scope,
    );
    assert_eq!(items.unwrap(), json!([1, 2, 3]));
    let nested = json!({"x": {"y": ["{% $states.input.a.b[1] %}", {"z": "{% $two * 3 %}"}]}, "k": true, "n": null});
    let out = evaluate_template(&nested, &FieldPath::new("Output"), &scope).unwrap();
    assert_eq!(
        out,
        json!({"x": {"y": [20, {"z": 6}]}, "k": true, "n": null})
    );
    // Keys are never evaluated.
    let keys = evaluate_template(&json!({"{% 1 %}": 1}), &FieldPath::new("Output"), &scope);
    assert_eq!(keys.unwrap(), json!({"{% 1 %}": 1}));
}

// "Handling expression errors": failure to return a result.
#[test]
fn undefined_fails_the_field_at_any_depth() {
    let input = json!({"present": 1});
    let scope = Scope::new(&input, &());
    let template = json!({"v": ["ok", {"w": "{% $states.input.absent %}"}]});
    let error = evaluate_template(&template, &FieldPath::new("Output"), &scope).unwrap_err();
    assert_eq!(
        Failure::from(error).cause,
        "The JSONata expression '$states.input.absent' specified for the field 'Output/v[1]/w' \
         returned nothing (undefined)."
    );
    let top = eval("{% $states.input.absent %}", &input).unwrap_err();
    assert!(matches!(top, QueryError::Undefined { .. }));
    assert_eq!(top.field().as_str(), "Output");
}

#[test]
fn null_is_a_value_not_undefined() {
    let input = json!({"bar": null});
    assert_eq!(ok("{% $states.input.bar %}", &input), Value::Null);
    assert_eq!(ok("{% $exists($states.input.bar) %}", &input), json!(true));
    assert_eq!(ok("{% $type($states.input.bar) %}", &input), json!("null"));
}

// "Handling expression errors": type error.
#[test]
fn type_errors_are_query_evaluation_errors() {
    let variables = vars(json!({"x": "a", "y": 1}));
    let input = json!({});
    let error = eval_in("{% $x + $y %}", &Scope::new(&input, &variables)).unwrap_err();
    let failure = Failure::from(error);
    assert_eq!(failure.error, "States.QueryEvaluationError");
    assert_eq!(
        failure.cause,
        "The JSONata expression '$x + $y' specified for the field 'Output' threw an error during \
         evaluation: T2001: The left side of the \"+\" operator must evaluate to a number"
    );
}

// "Handling expression errors": type incompatibility (TimeoutSeconds takes a number).
#[test]
fn typed_fields_refuse_other_types() {
    let input = json!({});
    let variables = vars(json!({"timeout": "10"}));
    let scope = Scope::new(&input, &variables);
    let error = evaluate_typed(
        &json!("{% $timeout %}"),
        &FieldPath::new("TimeoutSeconds"),
        &scope,
        JsonType::Number,
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "The JSONata expression '$timeout' specified for the field 'TimeoutSeconds' returned an \
         unexpected result type. Expected 'number', but was 'string'"
    );
    let literal = evaluate_typed(
        &json!(5),
        &FieldPath::new("TimeoutSeconds"),
        &scope,
        JsonType::Number,
    );
    assert_eq!(literal.unwrap(), json!(5));
}

// "Choice state": `Condition`.
#[test]
fn conditions_must_be_boolean() {
    let input = json!({"age": 20, "status": "active"});
    let scope = Scope::new(&input, &());
    let field = FieldPath::new("Choices").index(0).key("Condition");
    let yes = evaluate_condition(&json!("{% $states.input.age >= 18 %}"), &field, &scope);
    assert!(yes.unwrap());
    let no = evaluate_condition(
        &json!("{% $states.input.status = 'inactive' %}"),
        &field,
        &scope,
    );
    assert!(!no.unwrap());
    assert!(evaluate_condition(&json!(true), &field, &scope).unwrap());
    let error = evaluate_condition(&json!("{% $states.input.age %}"), &field, &scope).unwrap_err();
    assert_eq!(
        error.to_string(),
        "The JSONata expression '$states.input.age' specified for the field \
         'Choices[0]/Condition' returned an unexpected result type. Expected 'boolean', but was \
         'number'"
    );
    let missing =
        evaluate_condition(&json!("{% $states.input.nope %}"), &field, &scope).unwrap_err();
    assert!(missing
        .to_string()
        .ends_with("returned nothing (undefined)."));
}

// "Reserved variable : $states".
#[test]
fn states_variable_members() {
    let input = json!({"n": 1});
    let result = json!({"Payload": {"total": 21}});
    let error_output = json!({"Error": "States.TaskFailed", "Cause": "boom"});
    let context = json!({"Execution": {"Name": "exec-123", "StartTime": "2024-01-01T00:00:00Z"}});
    let scope = Scope::new(&input, &())
        .with_result(&result)
        .with_error_output(&error_output)
        .with_context(&context);
    assert_eq!(
        eval_in("{% $states.result.Payload.total * 2 %}", &scope).unwrap(),
        json!(42)
    );
    assert_eq!(
        eval_in("{% $states.errorOutput.Error %}", &scope).unwrap(),
        json!("States.TaskFailed")
    );
    assert_eq!(
        eval_in("{% $states.context.Execution.Name %}", &scope).unwrap(),
        json!("exec-123")
    );
    assert_eq!(eval_in("{% $states.input %}", &scope).unwrap(), input);
    // Where a member is not available it is undefined.
    let bare = Scope::new(&input, &());
    assert!(matches!(
        eval_in("{% $states.result %}", &bare),
        Err(QueryError::Undefined { .. })
    ));
    assert!(matches!(
        eval_in("{% $states.errorOutput %}", &bare),
        Err(QueryError::Undefined { .. })
    ));
}

#[test]
fn states_cannot_be_shadowed_by_a_workflow_variable() {
    let input = json!({"a": 1});
    let variables = vars(json!({"states": {"input": {"a": 2}}}));
    let scope = Scope::new(&input, &variables);
    assert_eq!(eval_in("{% $states.input.a %}", &scope).unwrap(), json!(1));
}

#[test]
fn local_bindings_and_blocks() {
    let input = json!({"items": [{"price": 2, "qty": 3}, {"price": 5, "qty": 1}]});
    let context = json!({"Execution": {"Name": "exec-123"}});
    let scope = Scope::new(&input, &()).with_context(&context);
    let out = eval_in(
        "{% ($total := $sum($states.input.items.(price * qty)); {'total': $total, 'exec': $states.context.Execution.Name}) %}",
        &scope,
    );
    assert_eq!(out.unwrap(), json!({"total": 11, "exec": "exec-123"}));
}

// "Supported JSONata version": 2.0.6, so 2.1's `??` and `?:` are syntax errors.
#[test]
fn newer_operators_are_refused() {
    let input = json!({});
    assert_eq!(
        cause("{% $states.input.x ?? 'd' %}", &input),
        "The JSONata expression '$states.input.x ?? 'd'' specified for the field 'Output' threw \
         an error during evaluation: S0211: The symbol \"?\" cannot be used as a unary operator"
    );
    assert!(cause("{% $states.input.x ?: 'd' %}", &input)
        .ends_with("S0211: The symbol \":\" cannot be used as a unary operator"));
    assert!(cause("{% [1, ($x := 1; $y ?? 2)] %}", &input).contains("S0211"));
    // The conditional operator, and `?` inside strings, are fine.
    assert_eq!(ok("{% 1 > 0 ? 'yes' : 'no' %}", &input), json!("yes"));
    assert_eq!(ok("{% 'a ?? b' %}", &input), json!("a ?? b"));
    assert!(compile("$a ?? 1").is_err());
    assert!(compile("$a ? 1 : 2").is_ok());
}

#[test]
fn syntax_errors_name_the_jsonata_code() {
    assert!(cause("{% $states.input.items[ %}", &json!({}))
        .contains("threw an error during evaluation: S0"));
}

// "Supported JSONata version": `$eval` is not available.
#[test]
fn eval_is_not_available() {
    let error = cause("{% $eval('1 + 2') %}", &json!({}));
    assert!(
        error.ends_with("T1006: Attempted to invoke a non-function"),
        "{error}"
    );
}

#[test]
fn numbers_come_back_as_integers_when_whole() {
    let input = json!({});
    assert_eq!(ok("{% 6 / 2 %}", &input).to_string(), "3");
    assert_eq!(ok("{% $sum([1..100]) %}", &input).to_string(), "5050");
    assert_eq!(
        ok("{% 0.1 + 0.2 %}", &input),
        json!(0.300_000_000_000_000_04)
    );
    assert_eq!(ok("{% [1.5 * 2, 2.5] %}", &input).to_string(), "[3,2.5]");
}

#[test]
fn the_execution_clock_drives_now_and_millis() {
    let input = json!({});
    let scope = Scope::new(&input, &()).with_clock(1_510_067_557_121);
    assert_eq!(
        eval_in("{% $millis() %}", &scope).unwrap(),
        json!(1_510_067_557_121_i64)
    );
    assert_eq!(
        eval_in("{% $now() %}", &scope).unwrap(),
        json!("2017-11-07T15:12:37.121Z")
    );
}

#[test]
fn object_key_order_is_kept() {
    let out = ok("{% {'b': 1, 'a': 2, 'c': 3} %}", &json!({}));
    assert_eq!(out.to_string(), r#"{"b":1,"a":2,"c":3}"#);
}

// "JSONata functions provided by Step Functions": $partition.
#[test]
fn partition() {
    let input = json!({"chunkSize": 2});
    assert_eq!(
        ok("{% $partition([1,2,3,4,5,6,7,8,9], 3) %}", &input),
        json!([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    );
    assert_eq!(
        ok(
            "{% $partition([1,2,3,4], $states.input.chunkSize) %}",
            &input
        ),
        json!([[1, 2], [3, 4]])
    );
    assert_eq!(
        ok("{% $partition([1,2,3,4,5], 2) %}", &input),
        json!([[1, 2], [3, 4], [5]])
    );
    assert_eq!(
        ok("{% $partition([1,2,3,4,5], 2.9) %}", &input),
        json!([[1, 2], [3, 4], [5]])
    );
    assert_eq!(ok("{% $partition([1,2,3]) %}", &input), json!([[1, 2, 3]]));
    assert_eq!(ok("{% $partition([1,2], 5) %}", &input), json!([[1, 2]]));
    assert!(cause("{% $partition([], 2) %}", &input).ends_with("returned nothing (undefined)."));
    assert!(
        cause("{% $partition([1,2,3], 0) %}", &input).ends_with("returned nothing (undefined).")
    );
    assert!(cause("{% $partition([1,2,3], -1) %}", &input).ends_with(
        "threw an error during evaluation: D3137: Second argument must be zero or greater"
    ));
    assert!(cause("{% $partition('x', 2) %}", &input)
        .ends_with("T0412: Argument 1 of function \"partition\" must be an array of undefined"));
    assert!(cause("{% $partition([1], 'a') %}", &input).ends_with(
        "T0410: Argument 2 of function \"partition\" does not match function signature"
    ));
    assert!(cause("{% $partition([1], 1, 2) %}", &input).ends_with(
        "T0410: Argument 3 of function \"partition\" does not match function signature"
    ));
    assert_eq!(
        ok(
            "{% $map($partition([1,2,3,4], 2), function($p){ $sum($p) }) %}",
            &input
        ),
        json!([3, 7])
    );
}

// "JSONata functions provided by Step Functions": $range.
#[test]
fn range() {
    let input = json!({});
    assert_eq!(
        ok("{% $range(0, 10, 2) %}", &input),
        json!([0, 2, 4, 6, 8, 10])
    );
    assert_eq!(ok("{% $range(10, 0, -5) %}", &input), json!([10, 5, 0]));
    assert_eq!(ok("{% $range(1, 10, 4) %}", &input), json!([1, 5, 9]));
    assert_eq!(
        ok("{% $range(1.7, 5, 1) %}", &input),
        json!([1, 2, 3, 4, 5])
    );
    assert_eq!(ok("{% $range(-1.7, 2, 1) %}", &input), json!([-1, 0, 1, 2]));
    assert_eq!(ok("{% $range(3, 3, 1) %}", &input), json!(3));
    for undefined in [
        "$range(1, 5)",
        "$range(1, 5, 0)",
        "$range(5, 1, 1)",
        "$range(1, 5, -1)",
    ] {
        assert!(cause(&format!("{{% {undefined} %}}"), &input)
            .ends_with("returned nothing (undefined)."));
    }
    assert!(cause("{% $range(1) %}", &input).contains("T0410: Argument 2 of function \"range\""));
    assert!(cause("{% $range('0', 4, 1) %}", &input)
        .contains("T0410: Argument 1 of function \"range\""));
    assert_eq!(
        ok("{% $count($range(1, 360145, 1)) %}", &input),
        json!(360_145)
    );
    assert_eq!(
        cause("{% $range(1, 360146, 1) %}", &input),
        "The JSONata expression '$range(1, 360146, 1)' specified for the field 'Output' threw an \
         error during evaluation: Expression evaluation memory limit exceeded: Check for \
         excessive memory usage"
    );
}

// "JSONata functions provided by Step Functions": $hash, and the States.Hash algorithms.
#[test]
fn hash() {
    let input = json!({"content": "input data"});
    let variables = vars(json!({"hashAlgorithmName": "SHA-1"}));
    let scope = Scope::new(&input, &variables);
    // The intrinsic page's States.Hash example hashes "input data" with SHA-1.
    assert_eq!(
        eval_in(
            "{% $hash($states.input.content, $hashAlgorithmName) %}",
            &scope
        )
        .unwrap(),
        json!("aaff4a450a104cd177d28d18d74485e8cae074b7")
    );
    assert_eq!(
        ok("{% $hash('abc', 'MD5') %}", &input),
        json!("900150983cd24fb0d6963f7d28e17f72")
    );
    assert_eq!(
        ok("{% $hash('abc', 'SHA-256') %}", &input),
        json!("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(
        ok("{% $length($hash('abc', 'SHA-384')) %}", &input),
        json!(96)
    );
    assert_eq!(
        ok("{% $length($hash('abc', 'SHA-512')) %}", &input),
        json!(128)
    );
    assert!(cause("{% $hash('abc', 'sha-256') %}", &input).ends_with(
        "D3137: Hash algorithm 'sha-256' must be one of SHA-1, SHA-384, SHA-256, SHA-512, MD5"
    ));
    assert!(cause("{% $hash('abc') %}", &input).ends_with("returned nothing (undefined)."));
    assert!(
        cause("{% $hash(1, 'MD5') %}", &input).contains("T0410: Argument 1 of function \"hash\"")
    );
}

// "JSONata functions provided by Step Functions": $random with an optional seed.
#[test]
fn random() {
    let input = json!({"seed": 42});
    assert_eq!(
        ok("{% $random($states.input.seed) = $random(42) %}", &input),
        json!(true)
    );
    assert_eq!(
        ok("{% $random(42) %}", &input),
        json!(0.727_563_680_032_868_1)
    );
    assert_eq!(ok("{% $random(42.9) = $random(42) %}", &input), json!(true));
    assert_eq!(
        ok("{% $random() >= 0 and $random() < 1 %}", &input),
        json!(true)
    );
    assert!(
        cause("{% $random('x') %}", &input).contains("T0410: Argument 1 of function \"random\"")
    );
}

// "JSONata functions provided by Step Functions": $uuid.
#[test]
fn uuid() {
    let input = json!({});
    let id = ok("{% $uuid() %}", &input);
    let id = id.as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(&id[14..15], "4");
    assert!("89ab".contains(&id[19..20]));
    assert_eq!(ok("{% $uuid() = $uuid() %}", &input), json!(false));
    assert!(cause("{% $uuid(1) %}", &input).contains("T0410: Argument 1 of function \"uuid\""));
}

// "JSONata functions provided by Step Functions": $parse.
#[test]
fn parse() {
    let input = json!({"json_string": "{\"customer\": \"Alice\", \"n\": [1, 2.0]}"});
    assert_eq!(
        ok("{% $parse($states.input.json_string) %}", &input),
        json!({"customer": "Alice", "n": [1, 2]})
    );
    assert_eq!(
        ok("{% $parse($states.input.json_string).customer %}", &input),
        json!("Alice")
    );
    assert_eq!(ok("{% $exists($parse('null')) %}", &input), json!(true));
    assert!(cause("{% $parse('not json') %}", &input).ends_with("D3137: Invalid JSON"));
    assert!(cause("{% $parse('') %}", &input).ends_with("D3137: Invalid JSON"));
    assert!(cause("{% $parse('{} {}') %}", &input).ends_with("D3137: Invalid JSON"));
    assert!(cause("{% $parse(1) %}", &input).contains("T0410: Argument 1 of function \"parse\""));
}
