//! A dimmable light's brightness: `0`..`255` on `.../light/<name>/brightness/set`, retained on `.../brightness`.
//!
//! The scale is Home Assistant's default (`brightness_scale` 255), so its
//! slider maps one to one. Plain numbers for the shell, `{"brightness":128}`
//! for JSON senders. `0` means off; the light keeps the level it had, and
//! `ON` brings it back.

use std::fmt;

use crate::payload::PayloadError;

/// A brightness level, `0` (off) to `255` (full).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Brightness(pub u8);

impl Brightness {
    pub const FULL: Self = Self(255);

    /// `128`, ` 128 `, `{"brightness":128}`; a fraction such as `127.5` is
    /// rounded (Home Assistant's templates can produce one).
    pub fn parse(payload: &[u8]) -> Result<Self, PayloadError> {
        const EXPECTED: &str = "a brightness 0..255 or {\"brightness\":0..255}";
        let text = std::str::from_utf8(payload)
            .map_err(|_| PayloadError::NotUtf8)?
            .trim();
        let number = if text.starts_with('{') {
            let value: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| PayloadError::Json(crate::payload::json_error_message(&e)))?;
            value.get("brightness").and_then(serde_json::Value::as_f64)
        } else {
            text.parse::<f64>().ok()
        };
        match number {
            Some(n) if n.is_finite() && (0.0..=255.0).contains(&n) => Ok(Self(n.round() as u8)),
            _ => Err(PayloadError::Unexpected {
                expected: EXPECTED,
                got: text.chars().take(64).collect(),
            }),
        }
    }

    /// The PWM duty cycle this level drives, `0.0`..=`1.0`.
    pub fn duty(self) -> f64 {
        f64::from(self.0) / 255.0
    }
}

impl fmt::Display for Brightness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_json_levels_parse_and_out_of_range_is_refused() {
        for (payload, want) in [
            ("0", 0),
            ("255", 255),
            (" 128\n", 128),
            ("127.5", 128),
            (r#"{"brightness":64}"#, 64),
            (r#"{"state":"ON","brightness":200}"#, 200),
        ] {
            assert_eq!(
                Brightness::parse(payload.as_bytes()),
                Ok(Brightness(want)),
                "{payload}"
            );
        }
        for bad in ["256", "-1", "bright", "", "NaN", r#"{"level":3}"#, "1e400"] {
            let err = Brightness::parse(bad.as_bytes()).unwrap_err().to_string();
            assert!(err.contains("0..255"), "{bad}: {err}");
        }
        assert!(matches!(
            Brightness::parse(b"{oops"),
            Err(PayloadError::Json(_))
        ));
        assert_eq!(Brightness(255).duty(), 1.0);
        assert_eq!(Brightness(0).duty(), 0.0);
    }
}
