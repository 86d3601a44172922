//! Argument validation: a tool's `inputSchema` compiled once, and the
//! `tools/call` arguments checked against it before they are forwarded.
//!
//! Schemas are compiled with `boon`, which implements JSON Schema drafts 4,
//! 6, 7, 2019-09 and 2020-12 (chosen by `$schema`; 2020-12 when absent, as
//! MCP specifies) and passes the official test suite. It resolves nothing
//! over the network: a schema that refers to another document does not
//! compile, and the call is then forwarded unvalidated (logged).
//!
//! boon checks every schema against its draft's metaschema first, except a
//! schema that lives on json-schema.org; that check builds all five
//! metaschemas on first use, 6 ms natively, per instance. A Spin instance
//! lives for one request, so every validated call would pay it. Input
//! schemas are therefore placed under a json-schema.org location (nothing
//! is ever fetched from there) and compiled leniently: a malformed keyword is
//! ignored or refused by the compiler, never a panic (tested below with
//! malformed schemas).

use serde_json::Value;
use std::fmt;

/// A compiled input schema.
pub(crate) struct Schema {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Schema")
    }
}

/// Why arguments do not fit: the failing location (a JSON pointer into the
/// arguments, `/` for the whole object) and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at '{}': {}", self.path, self.message)
    }
}

/// Where the schema lives as far as `boon` is concerned (never fetched; the
/// host skips the metaschema check, see the module docs).
const LOCATION: &str = "https://json-schema.org/mcp-edge/input-schema.json";

impl Schema {
    /// Compiles `schema` (an object, or `true`/`false`).
    pub(crate) fn compile(schema: &Value) -> Result<Schema, String> {
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V2020_12);
        // Schemas come from upstream servers: a `$ref` to anything outside the
        // schema (a file, a URL) is refused, never loaded.
        compiler.use_loader(Box::new(NoLoader));
        compiler
            .add_resource(LOCATION, schema.clone())
            .map_err(|e| e.to_string())?;
        let mut schemas = boon::Schemas::new();
        let index = compiler
            .compile(LOCATION, &mut schemas)
            .map_err(|e| e.to_string())?;
        Ok(Schema { schemas, index })
    }

    /// Checks `arguments`; on failure names the first failing location.
    pub(crate) fn validate(&self, arguments: &Value) -> Result<(), Violation> {
        let Err(error) = self.schemas.validate(arguments, self.index) else {
            return Ok(());
        };
        // The top error only says "validation failed"; the first leaf cause
        // names the location and the keyword that failed.
        let mut leaf = &error;
        while let Some(cause) = leaf.causes.first() {
            leaf = cause;
        }
        let path = leaf.instance_location.to_string();
        Err(Violation {
            path: if path.is_empty() { "/".into() } else { path },
            message: leaf.kind.to_string(),
        })
    }
}

/// The loader for external `$ref`s: none are loaded.
struct NoLoader;

impl boon::UrlLoader for NoLoader {
    fn load(&self, url: &str) -> Result<Value, Box<dyn std::error::Error>> {
        Err(format!("external $ref '{url}' is not loaded").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(schema: Value, args: Value) -> Result<(), Violation> {
        Schema::compile(&schema).unwrap().validate(&args)
    }

    #[test]
    fn draft_2020_12_and_draft_07_schemas_name_the_failing_path() {
        let body = json!({
            "type": "object",
            "properties": {
                "a": {"type": "integer", "minimum": 1},
                "items": {"type": "array", "items": {"type": "string"}}
            },
            "required": ["a"]
        });
        for draft in [
            None,
            Some("https://json-schema.org/draft/2020-12/schema"),
            Some("http://json-schema.org/draft-07/schema#"),
        ] {
            let mut schema = body.clone();
            if let Some(d) = draft {
                schema["$schema"] = d.into();
            }
            assert_eq!(
                check(schema.clone(), json!({"a": 3, "items": ["x"]})),
                Ok(())
            );
            let e = check(schema.clone(), json!({"a": 0})).unwrap_err();
            assert_eq!(e.path, "/a", "{draft:?}: {e}");
            let e = check(schema.clone(), json!({"a": 2, "items": ["x", 5]})).unwrap_err();
            assert_eq!(e.path, "/items/1", "{draft:?}: {e}");
            let e = check(schema, json!({})).unwrap_err();
            assert_eq!(e.path, "/", "{draft:?}: {e}");
            assert!(e.message.contains('a'), "names the missing property: {e}");
        }
    }

    #[test]
    fn malformed_schemas_never_panic() {
        let malformed = [
            json!({"type": 5}),
            json!({"type": ["string", 3]}),
            json!({"properties": []}),
            json!({"properties": {"a": 5}}),
            json!({"required": "a"}),
            json!({"required": [1, 2]}),
            json!({"minimum": "a", "maximum": null}),
            json!({"maxLength": -1, "minLength": 1.5}),
            json!({"multipleOf": 0}),
            json!({"items": 3, "prefixItems": {}}),
            json!({"allOf": {}, "anyOf": [], "oneOf": [5]}),
            json!({"not": "x"}),
            json!({"enum": 1, "const": {}}),
            json!({"additionalProperties": 7}),
            // An invalid `pattern` is refused too, but through boon's
            // "compiler bug" path, a debug assertion in test builds (an
            // error in release builds, which is what the gateway runs).
            json!({"patternProperties": {"(": {}}}),
            json!({"$ref": 5}),
            json!({"$ref": "#/nowhere"}),
            json!({"$defs": 5, "definitions": []}),
            json!({"$schema": 5}),
            json!({"$schema": "http://json-schema.org/draft-04/schema#", "exclusiveMinimum": "x"}),
            json!({"if": 1, "then": [], "else": "x"}),
            json!({"dependentRequired": {"a": 5}, "dependencies": {"a": 3}}),
            json!("a string"),
            json!(42),
        ];
        let args = [
            json!({}),
            json!({"a": 1}),
            json!([1, "x"]),
            json!(null),
            json!("a"),
        ];
        for schema in &malformed {
            if let Ok(compiled) = Schema::compile(schema) {
                for a in &args {
                    let _ = compiled.validate(a);
                }
            }
        }
    }

    #[test]
    fn schemas_that_do_not_compile_are_reported() {
        assert!(Schema::compile(&json!({"$schema": "https://example.com/own-meta"})).is_err());
        assert!(Schema::compile(&json!({"$ref": "https://example.com/other.json"})).is_err());
        let local = std::env::temp_dir().join("mcp-edge-ref.json");
        std::fs::write(&local, r#"{"type": "string"}"#).unwrap();
        let file = format!("file://{}", local.display());
        // The file exists and holds a valid schema: only the loader refuses it.
        let err = Schema::compile(&json!({"$ref": file})).expect_err("refused");
        assert!(err.contains("error loading"), "{err}");
    }
}
