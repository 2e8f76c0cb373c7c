//! The archive reducer (`notes/Archive@1`, not keyed) of the notebook example. It takes
//! `notes/NoteArchived@1`, which the notebook reducer emits when a note is deleted, and
//! keeps one state for the whole world: how many notes were archived and the titles of
//! the last [`KEEP`] of them, oldest first.
#![no_std]

extern crate alloc;
// On the host (unit tests) std provides the allocator and panic handler the cdylib
// needs; on wasm32 the SDK provides them and std is never linked.
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

use alloc::string::String;
use alloc::vec::Vec;

use aos_sdk::{Ctx, Out};
use serde::{Deserialize, Serialize};

/// How many recent titles the state keeps.
pub const KEEP: usize = 3;

/// `notes/ArchiveState@1` (fields in canonical order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveState {
    #[serde(with = "aos_sdk::u64_lens")]
    pub count: u64,
    pub recent: Vec<String>,
}

/// `notes/NoteArchived@1`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NoteArchived {
    pub id: String,
    pub title: String,
}

pub fn step(state: Option<ArchiveState>, event: NoteArchived, _ctx: &Ctx) -> Out<ArchiveState> {
    let mut s = state.unwrap_or(ArchiveState {
        count: 0,
        recent: Vec::new(),
    });
    s.count = s.count.saturating_add(1);
    s.recent.push(event.title);
    if s.recent.len() > KEEP {
        let extra = s.recent.len() - KEEP;
        s.recent.drain(..extra);
    }
    Out::new(s)
}

aos_sdk::reducer!(step);

#[cfg(test)]
mod tests {
    use super::*;
    use aos_sdk::{serde_json, Value};

    fn ctx() -> Ctx {
        Ctx {
            now_ns: 1,
            key: None,
            cell_mode: false,
        }
    }

    #[test]
    fn counts_and_keeps_the_last_titles() {
        let mut state = None;
        for (i, t) in ["a", "b", "c", "d", "e"].iter().enumerate() {
            let out = step(
                state,
                NoteArchived {
                    id: String::from("n"),
                    title: String::from(*t),
                },
                &ctx(),
            );
            assert!(out.domain_events.is_empty());
            let s = out.state.unwrap();
            assert_eq!(s.count, i as u64 + 1);
            state = Some(s);
        }
        let s = state.unwrap();
        assert_eq!(s.recent, ["c", "d", "e"]);
    }

    /// What the notebook emits on Delete is exactly what the archive reads.
    #[test]
    fn reads_what_the_notebook_emits() {
        let note = notebook::Note {
            body: String::new(),
            edits: 0,
            title: String::from("Plans"),
        };
        let nctx = Ctx {
            now_ns: 1,
            key: Some(Value::String("n2".into())),
            cell_mode: true,
        };
        let out = notebook::step(
            Some(note),
            notebook::Event::Delete(notebook::Delete { id: "n2".into() }),
            &nctx,
        );
        let emitted = &out.domain_events[0];
        let input = serde_json::json!({
            "version": 1,
            "state": null,
            "event": {"schema": emitted.schema, "value": emitted.value},
            "ctx": {"now_ns": 1, "key": null, "cell_mode": false},
        });
        let out = aos_sdk::run_json(&serde_json::to_vec(&input).unwrap(), step);
        assert_eq!(
            core::str::from_utf8(&out).unwrap(),
            r#"{"domain_events":[],"effects":[],"state":{"count":1,"recent":["Plans"]}}"#
        );
    }
}
