//! Checks a JSON value against a schema of the aggregator's OpenAPI document: the subset
//! utoipa writes (`$ref`, `type`, `properties`, `required`, `items`, `enum`, `allOf`,
//! `oneOf`, `anyOf`). An object may not carry fields its schema does not name, so a response
//! that grew a field without its documentation fails too.

use serde_json::Value;

/// The OpenAPI document and lookups in it.
pub struct Document(pub Value);

impl Document {
    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                let name = r.trim_start_matches("#/components/schemas/");
                let target = &self.0["components"]["schemas"][name];
                assert!(!target.is_null(), "{r} is not in the document");
                self.resolve(target)
            }
            None => schema,
        }
    }

    /// The schema of the `status` answer of `method path` (path as in the document).
    pub fn response_schema(&self, method: &str, path: &str, status: u16) -> Value {
        let op = &self.0["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not in the document");
        let response = &op["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{method} {path} does not document a {status} answer"
        );
        response["content"]["application/json"]["schema"].clone()
    }

    /// Every property an object schema names, through `$ref` and `allOf`.
    fn properties(&self, schema: &Value, into: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if let Some(props) = schema["properties"].as_object() {
            into.extend(props.keys().cloned());
        }
        for part in schema["allOf"].as_array().into_iter().flatten() {
            self.properties(part, into);
        }
    }

    /// The ways `value` breaks `schema` (empty when it conforms).
    pub fn violations(&self, schema: &Value, value: &Value, at: &str) -> Vec<String> {
        let mut found = Vec::new();
        self.check(schema, value, at, true, &mut found);
        found
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, whole: bool, out: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if let Some(parts) = schema["allOf"].as_array() {
            for part in parts {
                self.check(part, value, at, false, out);
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(options) = schema[key].as_array() {
                let fits = options.iter().any(|o| {
                    let mut inner = Vec::new();
                    self.check(o, value, at, true, &mut inner);
                    inner.is_empty()
                });
                if !fits {
                    out.push(format!("{at}: {value} fits none of {key}"));
                }
            }
        }
        if let Some(options) = schema["enum"].as_array()
            && !options.contains(value)
        {
            out.push(format!("{at}: {value} is not one of {options:?}"));
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.is_empty() && !types.iter().any(|t| has_type(value, t)) {
            out.push(format!("{at}: {value} is not {types:?}"));
            return;
        }
        if let Value::Object(map) = value {
            for required in schema["required"].as_array().into_iter().flatten() {
                let name = required.as_str().unwrap_or_default();
                if !map.contains_key(name) {
                    out.push(format!("{at}: required field {name} is missing"));
                }
            }
            let props = &schema["properties"];
            for (name, field) in map {
                if let Some(field_schema) = props.get(name) {
                    self.check(field_schema, field, &format!("{at}.{name}"), true, out);
                }
            }
            let open = !schema["additionalProperties"].is_null()
                && schema["additionalProperties"] != Value::Bool(false);
            if whole && !open && (props.is_object() || schema["allOf"].is_array()) {
                let mut named = Vec::new();
                self.properties(schema, &mut named);
                for name in map.keys().filter(|k| !named.contains(k)) {
                    out.push(format!("{at}: field {name} is not documented"));
                }
            }
        }
        if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
            for (i, v) in items.iter().enumerate() {
                self.check(item, v, &format!("{at}[{i}]"), true, out);
            }
        }
    }
}

fn has_type(value: &Value, t: &str) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Document {
        Document(json!({
            "components": { "schemas": {
                "Hero": {
                    "type": "object",
                    "required": ["id", "level"],
                    "properties": {
                        "id": { "type": "string" },
                        "level": { "type": "integer" },
                        "kind": { "type": "string", "enum": ["a", "b"] },
                        "best": { "oneOf": [{ "type": "null" }, { "$ref": "#/components/schemas/Hero" }] },
                        "tags": { "type": "array", "items": { "type": "string" } }
                    }
                }
            }}
        }))
    }

    #[test]
    fn conforming_values_pass_and_each_kind_of_drift_is_caught() {
        let d = doc();
        let hero = json!({ "$ref": "#/components/schemas/Hero" });
        let ok = json!({ "id": "h", "level": 2, "kind": "a", "best": null, "tags": ["x"] });
        assert!(d.violations(&hero, &ok, "$").is_empty());
        for bad in [
            json!({ "id": "h" }),
            json!({ "id": 1, "level": 2 }),
            json!({ "id": "h", "level": 2, "kind": "c" }),
            json!({ "id": "h", "level": 2, "best": 3 }),
            json!({ "id": "h", "level": 2, "tags": [1] }),
            json!({ "id": "h", "level": 2, "surprise": true }),
            json!([]),
        ] {
            assert!(!d.violations(&hero, &bad, "$").is_empty(), "{bad}");
        }
    }
}
