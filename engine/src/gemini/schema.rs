//! Gemini's `responseSchema` dialect (a subset of OpenAPI 3.0), derived from our JSON
//! Schemas: upper-case types, `format: enum` beside `enum`, `propertyOrdering` from the
//! `required` list, and no `additionalProperties`.

use serde_json::{Map, Value};

/// Converts one of `prompt::schema`'s JSON Schemas into Gemini's form.
pub(crate) fn to_gemini(schema: &Value) -> Value {
    let Value::Object(fields) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in fields {
        match key.as_str() {
            "additionalProperties" => {}
            "type" => {
                let upper = value.as_str().map(str::to_ascii_uppercase);
                out.insert(
                    key.clone(),
                    upper.map_or_else(|| value.clone(), Value::String),
                );
            }
            "properties" => {
                let converted = value
                    .as_object()
                    .map(|props| {
                        props
                            .iter()
                            .map(|(name, sub)| (name.clone(), to_gemini(sub)))
                            .collect::<Map<_, _>>()
                    })
                    .map_or_else(|| value.clone(), Value::Object);
                out.insert(key.clone(), converted);
            }
            "items" => {
                out.insert(key.clone(), to_gemini(value));
            }
            "required" => {
                out.insert(key.clone(), value.clone());
                out.insert("propertyOrdering".to_owned(), value.clone());
            }
            "enum" => {
                out.insert(key.clone(), value.clone());
                out.insert("format".to_owned(), Value::String("enum".to_owned()));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::schema;
    use serde_json::json;

    #[test]
    fn battle_schema_in_gemini_form() {
        let gemini = to_gemini(&schema::battle(Some(["c1", "c2"])));
        assert_eq!(gemini["type"], "OBJECT");
        assert_eq!(
            gemini["propertyOrdering"],
            json!(["battle_log", "winner", "battle_description"])
        );
        assert_eq!(gemini["properties"]["winner"]["format"], "enum");
        let item = &gemini["properties"]["battle_log"]["items"];
        assert_eq!(item["type"], "OBJECT");
        assert_eq!(item["properties"]["damage"]["type"], "INTEGER");
        assert!(!gemini.to_string().contains("additionalProperties"));
    }
}
