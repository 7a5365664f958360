//! Flows: a trigger (webhook, schedule, manual, chat), optional variables, and steps that each run one
//! action of a connection with templated input. A flow is one YAML or JSON document
//! ([`doc::FlowDoc`]), checked as a whole when it is applied ([`check`]), stored and versioned.
//! Templates are MiniJinja, sandboxed with an instruction budget ([`template`]).

pub mod chat;
pub mod check;
pub mod doc;
pub mod init;
pub mod run;
pub mod schedule;
pub mod service;
pub mod template;
pub mod yaml;

pub use doc::{ChatScope, FlowDoc, FlowProblem, HookAuth, HookFormat, OnError, StepDoc, Trigger};
