//! The OpenAPI 3.1 document as Swagger 2.0, for the tools that import only 2.0 (Power Automate
//! and Logic Apps custom connectors): request bodies become `in: body` parameters, components
//! become definitions, and schemas are cut to what 2.0 can say.

use serde_json::{Map, Value, json};

/// The OpenAPI 3.1 document as Swagger 2.0: request bodies become `in: body` parameters,
/// components become definitions, and schemas are cut to what 2.0 can say (no `oneOf`/`anyOf`/
/// `if`/`not`; a nullable type becomes its non-null type).
pub fn swagger2(doc: &Value) -> Value {
    let mut paths = Map::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        let mut out = Map::new();
        for (method, op) in item.as_object().into_iter().flatten() {
            if op.is_object() {
                out.insert(method.clone(), operation2(op));
            }
        }
        paths.insert(path.clone(), Value::Object(out));
    }
    let definitions: Map<String, Value> = doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), schema2(v)))
        .collect();
    let mut info = doc["info"].clone();
    if let Some(i) = info.as_object_mut() {
        i.remove("summary");
    }
    json!({
        "swagger": "2.0",
        "info": info,
        "basePath": "/",
        "schemes": ["http", "https"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "securityDefinitions": { "bearer": {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "`Bearer <DTC_API_TOKEN>`"
        } },
        "paths": paths,
        "definitions": definitions,
    })
}

fn operation2(op: &Value) -> Value {
    let mut out = Map::new();
    for key in [
        "operationId",
        "summary",
        "description",
        "tags",
        "security",
        "deprecated",
    ] {
        if let Some(v) = op.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    let mut params: Vec<Value> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(parameter2)
        .collect();
    if let Some(schema) = op["requestBody"]["content"]["application/json"].get("schema") {
        params.push(json!({
            "name": "body", "in": "body",
            "required": op["requestBody"]["required"].as_bool().unwrap_or(false),
            "schema": schema2(schema),
        }));
    }
    if !params.is_empty() {
        out.insert("parameters".into(), Value::Array(params));
    }
    let mut responses = Map::new();
    for (code, r) in op["responses"].as_object().into_iter().flatten() {
        let mut r2 = json!({ "description": r["description"].as_str().unwrap_or("") });
        if let Some(content) = r["content"].as_object()
            && let Some((_, media)) = content.iter().next()
            && let Some(schema) = media.get("schema")
        {
            r2["schema"] = schema2(schema);
        }
        responses.insert(code.clone(), r2);
    }
    out.insert("responses".into(), Value::Object(responses));
    Value::Object(out)
}

/// A non-body parameter: its schema's keywords move onto the parameter itself.
fn parameter2(p: &Value) -> Value {
    let mut out = json!({
        "name": p["name"], "in": p["in"],
        "required": p["required"].as_bool().unwrap_or(p["in"] == "path"),
    });
    if let Some(d) = p.get("description") {
        out["description"] = d.clone();
    }
    let schema = schema2(&p["schema"]);
    for (k, v) in schema.as_object().into_iter().flatten() {
        if matches!(
            k.as_str(),
            "type"
                | "format"
                | "enum"
                | "minimum"
                | "maximum"
                | "minLength"
                | "maxLength"
                | "pattern"
                | "default"
                | "items"
        ) {
            out[k] = v.clone();
        }
    }
    if out.get("type").is_none() {
        out["type"] = json!("string");
    }
    out
}

/// A JSON Schema (2020-12) as a Swagger 2.0 schema.
fn schema2(s: &Value) -> Value {
    let Value::Object(map) = s else {
        // `true` and friends: any value.
        return json!({});
    };
    // `anyOf: [X, {type: null}]` is how a nullable X is spelled: keep X.
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(options)) = map.get(key) {
            let non_null: Vec<&Value> = options.iter().filter(|o| o["type"] != "null").collect();
            if non_null.len() == 1 && options.len() == 2 && !map.contains_key("properties") {
                let mut inner = schema2(non_null[0]);
                inner["x-nullable"] = json!(true);
                if let Some(d) = map.get("description") {
                    inner["description"] = d.clone();
                }
                return inner;
            }
        }
    }
    let mut out = Map::new();
    for (k, v) in map {
        match k.as_str() {
            "$ref" => {
                let r = v.as_str().unwrap_or_default();
                out.insert(
                    k.clone(),
                    json!(r.replace("#/components/schemas/", "#/definitions/")),
                );
            }
            "type" => match v {
                Value::Array(types) => {
                    let kept: Vec<&Value> = types.iter().filter(|t| *t != "null").collect();
                    if let Some(t) = kept.first() {
                        out.insert("type".into(), (*t).clone());
                    }
                    if kept.len() < types.len() {
                        out.insert("x-nullable".into(), json!(true));
                    }
                }
                Value::String(t) if t == "null" => {}
                other => {
                    out.insert(k.clone(), other.clone());
                }
            },
            "properties" => {
                let props: Map<String, Value> = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(n, p)| (n.clone(), schema2(p)))
                    .collect();
                out.insert(k.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" if v.is_object() => {
                out.insert(k.clone(), schema2(v));
            }
            "additionalProperties" => {
                out.insert(k.clone(), v.clone());
            }
            "const" => {
                out.insert("enum".into(), json!([v]));
            }
            "examples" => {
                if let Some(first) = v.as_array().and_then(|a| a.first()) {
                    out.insert("example".into(), first.clone());
                }
            }
            // 2.0 has no null: a null default says nothing it can keep.
            "default" if v.is_null() => {}
            "exclusiveMinimum" | "exclusiveMaximum" if v.is_number() => {
                let bound = if k == "exclusiveMinimum" {
                    "minimum"
                } else {
                    "maximum"
                };
                out.insert(bound.into(), v.clone());
                out.insert(k.clone(), json!(true));
            }
            "description" | "title" | "format" | "enum" | "default" | "required" | "minimum"
            | "maximum" | "minLength" | "maxLength" | "pattern" | "minItems" | "maxItems"
            | "uniqueItems" | "readOnly" | "example" => {
                out.insert(k.clone(), v.clone());
            }
            // 2.0 cannot say these (`oneOf`, `anyOf`, `allOf` of rules, `if`/`then`, `not`,
            // `$defs`, `contentEncoding`): the server still checks them.
            _ => {}
        }
    }
    // An enum of one type without its type (schemars' unit enums) gets one for 2.0.
    if !out.contains_key("type")
        && !out.contains_key("$ref")
        && let Some(Value::Array(values)) = out.get("enum")
        && values.iter().all(Value::is_string)
    {
        out.insert("type".into(), json!("string"));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_and_combining_keywords_become_what_swagger_2_says() {
        let s = schema2(&json!({
            "type": "object",
            "required": ["a"],
            "properties": {
                "a": { "type": ["string", "null"], "pattern": "x" },
                "b": { "anyOf": [{ "$ref": "#/components/schemas/B" }, { "type": "null" }] },
                "c": { "const": "only" },
                "d": { "type": "integer", "exclusiveMinimum": 0 }
            },
            "oneOf": [{ "required": ["a"] }],
            "if": {}, "then": {}
        }));
        assert_eq!(
            s,
            json!({
                "type": "object",
                "required": ["a"],
                "properties": {
                    "a": { "type": "string", "x-nullable": true, "pattern": "x" },
                    "b": { "$ref": "#/definitions/B", "x-nullable": true },
                    "c": { "enum": ["only"], "type": "string" },
                    "d": { "type": "integer", "minimum": 0, "exclusiveMinimum": true }
                }
            })
        );
    }
}
