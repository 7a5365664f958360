//! Media upload (docs/dingtalk-api.md §3): `POST /media/upload?access_token=…` with multipart
//! `media` + `type`. Type, format and size are checked before a byte is sent.

use crate::auth::AppClient;
use crate::client::decode_old;
use crate::error::Error;
use crate::ids::MediaId;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The `type` form field of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaType {
    Image,
    Voice,
    Video,
    File,
}

const MB: usize = 1024 * 1024;

impl MediaType {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Image => "image",
            MediaType::Voice => "voice",
            MediaType::Video => "video",
            MediaType::File => "file",
        }
    }

    /// Size limit per the current upload page (20/2/20/20 MB); the older error table's 1 MB /
    /// 10 MB may still be enforced (UNCONFIRMED).
    pub fn max_bytes(self) -> usize {
        match self {
            MediaType::Voice => 2 * MB,
            MediaType::Image | MediaType::Video | MediaType::File => 20 * MB,
        }
    }

    /// Why a file of `len` bytes cannot be uploaded as this type (empty, or over
    /// [`Self::max_bytes`]), phrased to follow the field's name; `None` if it can.
    pub fn size_refusal(self, len: usize) -> Option<String> {
        let max = self.max_bytes();
        if len == 0 {
            Some("is an empty file".into())
        } else if len > max {
            let kind = self.as_str();
            Some(format!(
                "is {len} bytes; DingTalk takes at most {} MB for {kind}",
                max / MB
            ))
        } else {
            None
        }
    }

    /// File extensions accepted for this type.
    pub fn formats(self) -> &'static [&'static str] {
        match self {
            MediaType::Image => &["jpg", "jpeg", "gif", "png", "bmp"],
            MediaType::Voice => &["amr", "mp3", "wav"],
            MediaType::Video => &["mp4"],
            MediaType::File => &[
                "doc", "docx", "xls", "xlsx", "ppt", "pptx", "zip", "pdf", "rar",
            ],
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "image" => Some(MediaType::Image),
            "voice" => Some(MediaType::Voice),
            "video" => Some(MediaType::Video),
            "file" => Some(MediaType::File),
            _ => None,
        }
    }
}

/// A file to upload.
#[derive(Debug, Clone)]
pub struct MediaUpload {
    pub media_type: MediaType,
    pub file_name: String,
    pub bytes: Bytes,
}

/// A file name's extension, lower-cased: what follows its last `.` once surrounding whitespace
/// is trimmed, if something other than blank precedes that dot (`.png` alone and `a .png` have
/// none). The name is a name, not a path: a `/` in it is just a character.
pub fn file_extension(name: &str) -> Option<String> {
    let blank = |c: char| c.is_control() || c.is_whitespace() || c == '\u{feff}';
    let (stem, ext) = name.trim().rsplit_once('.')?;
    (!ext.is_empty() && stem.chars().next_back().is_some_and(|c| !blank(c)))
        .then(|| ext.to_ascii_lowercase())
}

impl MediaUpload {
    pub fn new(
        media_type: MediaType,
        file_name: impl Into<String>,
        bytes: impl Into<Bytes>,
    ) -> Self {
        MediaUpload {
            media_type,
            file_name: file_name.into(),
            bytes: bytes.into(),
        }
    }

    /// The lower-cased extension of the file name (see [`file_extension`]).
    pub fn extension(&self) -> Option<String> {
        file_extension(&self.file_name)
    }

    /// Check type, format and size against DingTalk's limits.
    pub fn validate(&self) -> Result<(), Error> {
        if self.file_name.trim().is_empty() {
            return Err(Error::invalid_input("file_name", "must not be empty"));
        }
        let formats = self.media_type.formats();
        match self.extension() {
            Some(ext) if formats.contains(&ext.as_str()) => {}
            other => {
                return Err(Error::invalid_input(
                    "file_name",
                    format!(
                        "a {} upload must be one of {} (got {})",
                        self.media_type.as_str(),
                        formats.join(", "),
                        other.map_or("no extension".into(), |e| format!("`.{e}`"))
                    ),
                ));
            }
        }
        match self.media_type.size_refusal(self.bytes.len()) {
            Some(reason) => Err(Error::invalid_input("media", reason)),
            None => Ok(()),
        }
    }
}

/// Response of a media upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadedMedia {
    pub media_id: MediaId,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub created_at: i64,
    #[serde(rename = "type")]
    pub media_type: String,
}

fn mime_for(ext: &str) -> &'static str {
    match ext {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "mp3" => "audio/mpeg",
        "wav" => "audio/wav",
        "amr" => "audio/amr",
        "mp4" => "video/mp4",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

impl AppClient {
    /// `POST /media/upload`: upload a file and get its `media_id`.
    pub async fn upload_media(&self, upload: &MediaUpload) -> Result<UploadedMedia, Error> {
        const ROUTE: &str = "media.upload";
        upload.validate()?;
        let mime = mime_for(upload.extension().as_deref().unwrap_or(""));
        self.with_token(|token| {
            let client = self.client().clone();
            async move {
                let part = reqwest::multipart::Part::bytes(upload.bytes.to_vec())
                    .file_name(upload.file_name.clone())
                    .mime_str(mime)
                    .map_err(|e| Error::invalid_input("file_name", e.to_string()))?;
                let form = reqwest::multipart::Form::new()
                    .text("type", upload.media_type.as_str())
                    .part("media", part);
                let resp = client
                    .http()
                    .post(client.oapi_url("/media/upload"))
                    .query(&[("access_token", token.expose())])
                    .timeout(client.config().upload_timeout)
                    .multipart(form)
                    .send()
                    .await
                    .map_err(|e| Error::transport(ROUTE, e))?;
                decode_old(ROUTE, resp).await
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn an_extension_is_what_follows_the_last_dot_of_the_trimmed_name() {
        assert_eq!(file_extension("chart.PNG").as_deref(), Some("png"));
        assert_eq!(file_extension("a/.png\u{2005}\n").as_deref(), Some("png"));
        assert_eq!(file_extension("report.tar.gz").as_deref(), Some("gz"));
        assert_eq!(file_extension(".png"), None);
        assert_eq!(file_extension("a .png"), None);
        assert_eq!(file_extension("a."), None);
        assert_eq!(file_extension("noext"), None);
    }

    use super::*;

    #[test]
    fn format_is_checked_against_the_type() {
        let u = MediaUpload::new(MediaType::Image, "report.pdf", vec![1u8]);
        assert_eq!(u.validate().unwrap_err().field(), Some("file_name"));
        let u = MediaUpload::new(MediaType::File, "Report.PDF", vec![1u8]);
        assert!(u.validate().is_ok());
    }

    #[test]
    fn size_is_checked_before_sending() {
        let u = MediaUpload::new(MediaType::Voice, "a.mp3", vec![0u8; 2 * MB + 1]);
        assert_eq!(u.validate().unwrap_err().field(), Some("media"));
    }
}
