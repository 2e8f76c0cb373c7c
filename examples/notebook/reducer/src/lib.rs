//! The notebook reducer (`notes/Notebook@1`), keyed by `notes/NoteId@1`: one cell per
//! note, routed by the event's `$value.id`.
//!
//! - `Create{id, title}` starts an empty note. A `Create` for a note that already exists
//!   changes nothing.
//! - `Append{id, text}` adds `text` to the body (on a new line once the body has text) and
//!   counts one edit. An `Append` to a note that does not exist is ignored: the state
//!   stays null, so no cell appears.
//! - `Delete{id}` returns a null state, which deletes the cell, and emits
//!   `notes/NoteArchived@1{id, title}`, which the kernel routes to the archive reducer
//!   (`notes/Archive@1`) in the same cascade. Deleting a missing note emits nothing.
#![no_std]

extern crate alloc;
// On the host (unit tests) std provides the allocator and panic handler the cdylib
// needs; on wasm32 the SDK provides them and std is never linked.
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

use alloc::string::String;

use aos_sdk::{Ctx, Out};
use serde::{Deserialize, Serialize};

/// The schema of the domain event emitted when a note is deleted.
pub const NOTE_ARCHIVED: &str = "notes/NoteArchived@1";

/// `notes/Note@1`: the state of one cell. Fields are declared in canonical (sorted)
/// order so the output is already canonical JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub body: String,
    #[serde(with = "aos_sdk::u64_lens")]
    pub edits: u64,
    pub title: String,
}

/// The record of the `Create` arm.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Create {
    pub id: String,
    pub title: String,
}

/// The record of the `Append` arm.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Append {
    pub id: String,
    pub text: String,
}

/// The record of the `Delete` arm.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Delete {
    pub id: String,
}

/// `notes/NoteEvent@1`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "$tag", content = "$value")]
pub enum Event {
    Create(Create),
    Append(Append),
    Delete(Delete),
}

/// `notes/NoteArchived@1`: what the archive reducer receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteArchived {
    pub id: String,
    pub title: String,
}

pub fn step(state: Option<Note>, event: Event, _ctx: &Ctx) -> Out<Note> {
    match (state, event) {
        (Some(note), Event::Create(_)) => Out::new(note),
        (None, Event::Create(Create { title, .. })) => Out::new(Note {
            body: String::new(),
            edits: 0,
            title,
        }),
        (Some(mut note), Event::Append(Append { text, .. })) => {
            if !note.body.is_empty() {
                note.body.push('\n');
            }
            note.body.push_str(&text);
            note.edits = note.edits.saturating_add(1);
            Out::new(note)
        }
        // No note to append to: keep the cell absent.
        (None, Event::Append(_)) => Out::delete(),
        (Some(note), Event::Delete(Delete { id })) => {
            let mut out = Out::delete();
            out.emit(
                NOTE_ARCHIVED,
                &NoteArchived {
                    id,
                    title: note.title,
                },
            );
            out
        }
        (None, Event::Delete(_)) => Out::delete(),
    }
}

aos_sdk::reducer!(step);

#[cfg(test)]
mod tests {
    use super::*;
    use aos_sdk::{serde_json, Value};

    fn ctx(key: &str) -> Ctx {
        Ctx {
            now_ns: 1,
            key: Some(Value::String(key.into())),
            cell_mode: true,
        }
    }

    fn create(id: &str, title: &str) -> Event {
        Event::Create(Create {
            id: id.into(),
            title: title.into(),
        })
    }

    fn append(id: &str, text: &str) -> Event {
        Event::Append(Append {
            id: id.into(),
            text: text.into(),
        })
    }

    #[test]
    fn create_append_and_recreate() {
        let out = step(None, create("n1", "Groceries"), &ctx("n1"));
        let note = out.state.clone().unwrap();
        assert_eq!(note.title, "Groceries");
        assert_eq!((note.body.as_str(), note.edits), ("", 0));
        let note = step(Some(note), append("n1", "milk"), &ctx("n1"))
            .state
            .unwrap();
        let note = step(Some(note), append("n1", "eggs"), &ctx("n1"))
            .state
            .unwrap();
        assert_eq!((note.body.as_str(), note.edits), ("milk\neggs", 2));
        // Creating it again keeps what is there.
        let again = step(Some(note.clone()), create("n1", "Other"), &ctx("n1"));
        assert_eq!(again.state, Some(note));
        assert!(again.domain_events.is_empty());
    }

    #[test]
    fn append_to_a_missing_note_is_ignored() {
        let out = step(None, append("n9", "lost"), &ctx("n9"));
        assert_eq!(out.state, None);
        assert!(out.domain_events.is_empty() && out.effects.is_empty());
    }

    #[test]
    fn delete_clears_the_cell_and_emits_archived() {
        let note = Note {
            body: String::from("x"),
            edits: 1,
            title: String::from("Plans"),
        };
        let out = step(
            Some(note),
            Event::Delete(Delete { id: "n2".into() }),
            &ctx("n2"),
        );
        assert_eq!(out.state, None);
        assert_eq!(out.domain_events.len(), 1);
        assert_eq!(out.domain_events[0].schema, NOTE_ARCHIVED);
        assert_eq!(
            out.domain_events[0].value,
            serde_json::json!({"id": "n2", "title": "Plans"})
        );
        let missing = step(None, Event::Delete(Delete { id: "n3".into() }), &ctx("n3"));
        assert_eq!(missing.state, None);
        assert!(missing.domain_events.is_empty());
    }

    #[test]
    fn speaks_the_json_abi() {
        let input = r#"{"ctx":{"cell_mode":true,"key":"n1","now_ns":"9007199254740993"},"event":{"schema":"notes/NoteEvent@1","value":{"$tag":"Append","$value":{"id":"n1","text":"b"}}},"state":{"body":"a","edits":1,"title":"T"},"version":1}"#;
        let out = aos_sdk::run_json(input.as_bytes(), step);
        assert_eq!(
            core::str::from_utf8(&out).unwrap(),
            r#"{"domain_events":[],"effects":[],"state":{"body":"a\nb","edits":2,"title":"T"}}"#
        );
        let input = r#"{"ctx":{"cell_mode":true,"key":"n1","now_ns":5},"event":{"schema":"notes/NoteEvent@1","value":{"$tag":"Delete","$value":{"id":"n1"}}},"state":{"body":"","edits":0,"title":"T"},"version":1}"#;
        let out = aos_sdk::run_json(input.as_bytes(), step);
        assert_eq!(
            core::str::from_utf8(&out).unwrap(),
            r#"{"domain_events":[{"schema":"notes/NoteArchived@1","value":{"id":"n1","title":"T"}}],"effects":[],"state":null}"#
        );
    }
}
