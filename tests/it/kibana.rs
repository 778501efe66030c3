//! The Kibana saved objects (`infra/kibana/saved_objects.ndjson`) only use fields that exist
//! in the index mappings (`infra/elasticsearch/*.json`), with types that fit, and every
//! reference points at an object in the file.

use std::collections::{HashMap, HashSet};

use integration_tests::repo_root;
use serde_json::Value;

/// Field path → type, including multi-fields such as `job_title.keyword`.
fn mapping_fields(index: &str) -> HashMap<String, String> {
    let path = repo_root().join(format!("infra/elasticsearch/{index}.json"));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut fields = HashMap::new();
    for (name, spec) in doc["mappings"]["properties"].as_object().unwrap() {
        fields.insert(name.clone(), spec["type"].as_str().unwrap().to_string());
        if let Some(subfields) = spec["fields"].as_object() {
            for (sub, sub_spec) in subfields {
                fields.insert(
                    format!("{name}.{sub}"),
                    sub_spec["type"].as_str().unwrap().to_string(),
                );
            }
        }
    }
    fields
}

fn objects() -> Vec<Value> {
    std::fs::read_to_string(repo_root().join("infra/kibana/saved_objects.ndjson"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// `ecommerce_clickstream*` → `ecommerce_clickstream`.
fn index_of(pattern_title: &str) -> String {
    pattern_title.trim_end_matches('*').to_string()
}

#[test]
fn every_field_a_visualisation_uses_exists_in_its_index_mapping() {
    let objects = objects();
    let patterns: HashMap<&str, &str> = objects
        .iter()
        .filter(|o| o["type"] == "index-pattern")
        .map(|o| {
            (
                o["id"].as_str().unwrap(),
                o["attributes"]["title"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(patterns.len(), 2, "data views for both indices");

    for (id, title) in &patterns {
        let pattern = objects.iter().find(|o| o["id"] == *id).unwrap();
        let time_field = pattern["attributes"]["timeFieldName"].as_str().unwrap();
        assert_eq!(
            mapping_fields(&index_of(title))
                .get(time_field)
                .map(String::as_str),
            Some("date"),
            "{id}"
        );
    }

    let mut checked = 0;
    for vis in objects.iter().filter(|o| o["type"] == "visualization") {
        let title = vis["attributes"]["title"].as_str().unwrap();
        let pattern_id = vis["references"][0]["id"].as_str().unwrap();
        let pattern = patterns
            .get(pattern_id)
            .unwrap_or_else(|| panic!("{title}: unknown data view {pattern_id}"));
        let fields = mapping_fields(&index_of(pattern));
        let state: Value =
            serde_json::from_str(vis["attributes"]["visState"].as_str().unwrap()).unwrap();
        for agg in state["aggs"].as_array().unwrap() {
            let Some(field) = agg["params"]["field"].as_str() else {
                continue;
            };
            let kind = fields.get(field).unwrap_or_else(|| {
                panic!("{title}: field {field} is not in the {pattern} mapping")
            });
            let agg_type = agg["type"].as_str().unwrap();
            let fits = match agg_type {
                "terms" | "cardinality" => kind == "keyword" || kind == "long" || kind == "integer",
                "sum" | "avg" | "median" | "max" | "min" | "histogram" => {
                    matches!(kind.as_str(), "double" | "long" | "integer" | "float")
                }
                "date_histogram" => kind == "date",
                other => panic!("{title}: aggregation {other} not checked"),
            };
            assert!(fits, "{title}: {agg_type} on {field} of type {kind}");
            checked += 1;
        }
        // Fields named in the KQL query too.
        let search: Value = serde_json::from_str(
            vis["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let query = search["query"]["query"].as_str().unwrap_or_default();
        if let Some((field, _)) = query.split_once(':') {
            assert!(
                fields.contains_key(field.trim()),
                "{title}: query field {field} unknown"
            );
        }
    }
    assert!(checked >= 15, "only {checked} aggregations checked");
}

#[test]
fn dashboards_reference_existing_visualisations_with_the_panels_they_list() {
    let objects = objects();
    let ids: HashSet<&str> = objects.iter().map(|o| o["id"].as_str().unwrap()).collect();
    let dashboards: Vec<&Value> = objects
        .iter()
        .filter(|o| o["type"] == "dashboard")
        .collect();
    assert_eq!(dashboards.len(), 2);
    for dashboard in dashboards {
        let panels: Vec<Value> =
            serde_json::from_str(dashboard["attributes"]["panelsJSON"].as_str().unwrap()).unwrap();
        let references = dashboard["references"].as_array().unwrap();
        assert_eq!(panels.len(), references.len());
        for panel in &panels {
            let name = panel["panelRefName"].as_str().unwrap();
            let reference = references.iter().find(|r| r["name"] == name).unwrap();
            assert!(
                ids.contains(reference["id"].as_str().unwrap()),
                "{name} points nowhere"
            );
        }
    }
}
