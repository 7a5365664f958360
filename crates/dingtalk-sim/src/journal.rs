//! Keeping the chat across restarts: with a journal file (the sandbox keeps one in its data
//! folder), every accepted message and every recall is appended as a JSON line, and a
//! simulator started on the same file shows the same chat. Only what the chat page and
//! `/_sim/messages` show is kept; tokens, rate windows and the read-status bookkeeping of
//! earlier runs are not (a real DingTalk would not forget them, but a sandbox may).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::ReceivedMessage;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Entry {
    Message(Box<ReceivedMessage>),
    Recalled(u64),
}

pub(crate) struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Open (creating it and its folder) and read back the messages it holds.
    pub fn open(path: &Path) -> std::io::Result<(Journal, Vec<ReceivedMessage>)> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut messages: Vec<ReceivedMessage> = Vec::new();
        if path.exists() {
            for line in BufReader::new(File::open(path)?).lines() {
                // A line cut short by a crash is skipped; the rest still count.
                match serde_json::from_str::<Entry>(&line?) {
                    Ok(Entry::Message(m)) => messages.push(*m),
                    Ok(Entry::Recalled(id)) => {
                        if let Some(m) = messages.iter_mut().find(|m| m.id == id) {
                            m.recalled = true;
                        }
                    }
                    Err(_) => {}
                }
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok((
            Journal {
                path: path.to_owned(),
                file,
            },
            messages,
        ))
    }

    fn append(&mut self, entry: &Entry) {
        let mut line = serde_json::to_vec(entry).expect("journal entries serialize");
        line.push(b'\n');
        if let Err(e) = self.file.write_all(&line) {
            tracing::warn!(error = %e, path = %self.path.display(), "the simulator's journal could not be written");
        }
    }

    pub fn message(&mut self, m: &ReceivedMessage) {
        self.append(&Entry::Message(Box::new(m.clone())));
    }

    pub fn recalled(&mut self, id: u64) {
        self.append(&Entry::Recalled(id));
    }

    /// Forget everything (`DELETE /_sim/messages`).
    pub fn clear(&mut self) {
        if let Err(e) = self.file.set_len(0) {
            tracing::warn!(error = %e, path = %self.path.display(), "the simulator's journal could not be cleared");
        }
    }
}
