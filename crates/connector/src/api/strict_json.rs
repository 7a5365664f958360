//! Reading a request body as exactly one JSON value, strictly: nothing may follow it, no object
//! may give a key twice (serde_json would keep the last one silently), no text may hold U+0000
//! (PostgreSQL refuses it in text and jsonb), and `16.0` reads as the integer 16 (as JSON Schema's
//! `integer` does). One pass over the input; the path of the offending value is rendered only
//! when there is one.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::fmt;

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not JSON, or something follows the value.
    Syntax { line: usize, column: usize },
    /// An object gives the key at `path` more than once.
    Duplicate { path: String },
    /// The string (or key) at `path` holds U+0000.
    Nul { path: String },
}

/// Parse `bytes` as one strict JSON value.
pub fn from_slice(bytes: &[u8]) -> Result<Value, Refusal> {
    let state = State::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = Strict(&state).deserialize(&mut de).and_then(|v| {
        de.end()?;
        Ok(v)
    });
    match (parsed, state.refusal.into_inner()) {
        (_, Some(refusal)) => Err(refusal),
        (Ok(v), None) => Ok(v),
        (Err(e), None) => Err(Refusal::Syntax {
            line: e.line(),
            column: e.column(),
        }),
    }
}

enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Default)]
struct State {
    path: RefCell<Vec<Segment>>,
    refusal: RefCell<Option<Refusal>>,
}

impl State {
    /// `body`, `buttons[1].url`, `at_mobiles[0]` …
    fn path(&self, last: Option<&str>) -> String {
        let mut out = String::new();
        let key = |out: &mut String, k: &str| {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(k);
        };
        for segment in self.path.borrow().iter() {
            match segment {
                Segment::Key(k) => key(&mut out, k),
                Segment::Index(i) => {
                    if out.is_empty() {
                        out.push_str("body");
                    }
                    out.push_str(&format!("[{i}]"));
                }
            }
        }
        if let Some(k) = last {
            key(&mut out, k);
        }
        if out.is_empty() {
            out.push_str("body");
        }
        out
    }

    fn refuse<E: de::Error>(&self, refusal: Refusal) -> E {
        let message = match &refusal {
            Refusal::Duplicate { path } => format!("duplicate key {path}"),
            Refusal::Nul { path } => format!("NUL character in {path}"),
            Refusal::Syntax { .. } => "syntax".to_owned(),
        };
        *self.refusal.borrow_mut() = Some(refusal);
        E::custom(message)
    }
}

struct Strict<'s>(&'s State);

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::from(n))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        if f.fract() == 0.0 && f.abs() < 9.0e15 {
            return Ok(Value::from(f as i64));
        }
        Ok(Value::from(f))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        self.visit_string(s.to_owned())
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        if s.contains('\0') {
            return Err(self.0.refuse(Refusal::Nul {
                path: self.0.path(None),
            }));
        }
        Ok(Value::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        loop {
            self.0.path.borrow_mut().push(Segment::Index(items.len()));
            let next = seq.next_element_seed(Strict(self.0));
            self.0.path.borrow_mut().pop();
            match next? {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if key.contains('\0') {
                return Err(self.0.refuse(Refusal::Nul {
                    path: self.0.path(None),
                }));
            }
            if object.contains_key(&key) {
                return Err(self.0.refuse(Refusal::Duplicate {
                    path: self.0.path(Some(&key)),
                }));
            }
            self.0.path.borrow_mut().push(Segment::Key(key.clone()));
            let value = map.next_value_seed(Strict(self.0));
            self.0.path.borrow_mut().pop();
            object.insert(key, value?);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_value_with_integral_floats_as_integers() {
        assert_eq!(
            from_slice(br#"{"a": 16.0, "b": [2.5, 3e2], "c": null, "d": "x"}"#).unwrap(),
            json!({"a": 16, "b": [2.5, 300], "c": null, "d": "x"})
        );
    }

    #[test]
    fn nothing_may_follow_the_value() {
        for body in [&b"{} {}"[..], b"{}garbage", b"{\"a\":1}\n{\"a\":2}", b"  "] {
            assert!(
                matches!(from_slice(body), Err(Refusal::Syntax { .. })),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_key_given_twice_is_named_with_its_path() {
        assert_eq!(
            from_slice(br#"{"content": "a", "content": "b"}"#),
            Err(Refusal::Duplicate {
                path: "content".into()
            })
        );
        assert_eq!(
            from_slice(br#"{"buttons": [{"title": "a"}, {"url": "u", "url": "v"}]}"#),
            Err(Refusal::Duplicate {
                path: "buttons[1].url".into()
            })
        );
        // The same key in two objects is fine.
        assert!(from_slice(br#"[{"a": 1}, {"a": 2}]"#).is_ok());
    }

    #[test]
    fn nul_is_refused_where_it_is() {
        assert_eq!(
            from_slice(br#"{"at_mobiles": ["1", "a\u0000b"]}"#),
            Err(Refusal::Nul {
                path: "at_mobiles[1]".into()
            })
        );
        assert_eq!(
            from_slice(br#""\u0000""#),
            Err(Refusal::Nul {
                path: "body".into()
            })
        );
        assert_eq!(
            from_slice(br#"{"x": {"k\u0000": 1}}"#),
            Err(Refusal::Nul { path: "x".into() })
        );
    }
}
