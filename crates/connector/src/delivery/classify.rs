//! One decision per failed attempt: retry later, retry because the token was still rejected, or
//! fail for good. It reads only the class the `dingtalk` crate gave the error where it was
//! created (by code, never by message text) and DingTalk's `retry_after` hint.

use std::time::Duration;

use dingtalk::ErrorClass;

use crate::actions::ExecuteError;

/// What the engine does about a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Transient (network, timeout, 5xx, system busy) or throttled (QPS/QPM limits,
    /// `send.too.fast`, webhook rate-limit codes): try again after backoff, and not before
    /// `after` (DingTalk's hint). `throttled` makes the engine also hold back the rate-limit key.
    Retry {
        after: Option<Duration>,
        throttled: bool,
    },
    /// The access token was rejected even after the client's own refresh-and-repeat inside the
    /// call: retry with backoff a limited number of times ([`super::BackoffConfig::token_retries`]),
    /// then fail.
    RefreshToken,
    /// Permanent: DingTalk refused the request for good (unknown group, wrong robot, bad
    /// message), the credentials are wrong, or the input is unusable.
    Fail,
}

/// The outcome of a DingTalk client error.
pub fn classify(error: &dingtalk::Error) -> Outcome {
    outcome_of(error.class(), error.retry_after())
}

/// The outcome of an error class; [`classify`] is this applied to an error's class and hint.
pub fn outcome_of(class: ErrorClass, retry_after: Option<Duration>) -> Outcome {
    match class {
        ErrorClass::Transient => Outcome::Retry {
            after: retry_after,
            throttled: false,
        },
        ErrorClass::Throttled => Outcome::Retry {
            after: retry_after,
            throttled: true,
        },
        ErrorClass::TokenRejected => Outcome::RefreshToken,
        ErrorClass::InvalidInput | ErrorClass::CredentialsRejected | ErrorClass::Rejected => {
            Outcome::Fail
        }
    }
}

/// The outcome of running a step: input that turned out unusable at run time is permanent.
pub fn classify_execute(error: &ExecuteError) -> Outcome {
    match error {
        ExecuteError::Input(_) => Outcome::Fail,
        ExecuteError::DingTalk { error, .. } => classify(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dingtalk::Dialect::New;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Want {
        Retry,
        Throttled,
        Token,
        Fail,
    }
    use Want::*;

    fn want_of(o: Outcome) -> Want {
        match o {
            Outcome::Retry {
                throttled: false, ..
            } => Retry,
            Outcome::Retry {
                throttled: true, ..
            } => Throttled,
            Outcome::RefreshToken => Token,
            Outcome::Fail => Fail,
        }
    }

    /// What the engine must do for each class, written out independently of `outcome_of`.
    fn want_for(class: ErrorClass) -> Want {
        match class {
            ErrorClass::Transient => Retry,
            ErrorClass::Throttled => Throttled,
            ErrorClass::TokenRejected => Token,
            ErrorClass::InvalidInput | ErrorClass::CredentialsRejected | ErrorClass::Rejected => {
                Fail
            }
        }
    }

    /// Every code docs/dingtalk-api.md lists (the `dingtalk` crate's table of them) gets the delivery
    /// outcome its documented class calls for.
    #[test]
    fn every_documented_code_gets_its_delivery_outcome() {
        let mut wrong = Vec::new();
        for c in dingtalk::codes::CODES {
            let (status, code) = (c.http_status, c.code);
            let got = want_of(outcome_of(
                dingtalk::classify(c.dialect, status, Some(code)),
                None,
            ));
            let want = want_for(c.class);
            if got != want {
                wrong.push(format!(
                    "{code} (HTTP {status}): got {got:?}, want {want:?}"
                ));
            }
        }
        assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
        // Spot checks that matter most to a queue: the webhook lock-out and QPS limits slow
        // down, a rejected token is refreshed, an unknown group fails at once.
        for (status, code, want) in [
            (
                403,
                "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
                Throttled,
            ),
            (400, "InvalidAuthentication", Token),
            (400, "invalid.openConversationId", Fail),
            (500, "system.error", Retry),
        ] {
            let got = want_of(outcome_of(
                dingtalk::classify(New, status, Some(code)),
                None,
            ));
            assert_eq!(got, want, "{code}");
        }
        let webhook = dingtalk::classify(dingtalk::Dialect::Old, 200, Some("660026"));
        assert_eq!(want_of(outcome_of(webhook, None)), Throttled);
    }

    #[test]
    fn unknown_codes_retry_on_5xx_and_fail_on_4xx() {
        for (status, code, want) in [
            (500, Some("SomeFutureServerCode"), Retry),
            (400, Some("some.future.code"), Fail),
            (500, None, Retry),
            (502, None, Retry),
            (429, None, Retry),
            (400, None, Fail),
        ] {
            let got = want_of(outcome_of(dingtalk::classify(New, status, code), None));
            assert_eq!(got, want, "HTTP {status} {code:?}");
        }
    }

    #[test]
    fn a_retry_keeps_dingtalks_hint() {
        let hint = Some(Duration::from_secs(1));
        assert_eq!(
            outcome_of(ErrorClass::Throttled, hint),
            Outcome::Retry {
                after: hint,
                throttled: true
            }
        );
    }

    #[test]
    fn local_validation_and_run_time_input_errors_fail() {
        let e = dingtalk::Error::invalid_input("msgParam", "too long");
        assert_eq!(classify(&e), Outcome::Fail);
        let record = crate::error::ErrorBody::from_dingtalk(&e);
        assert_eq!(record.code, crate::error::ErrorCode::InvalidInput);
        assert_eq!(record.field.as_deref(), Some("msgParam"));
        let run = ExecuteError::Input(crate::actions::InputError::field(
            "file_url",
            "could not be downloaded",
        ));
        assert_eq!(classify_execute(&run), Outcome::Fail);
        let record = crate::error::ErrorBody::from_execute(&run);
        assert_eq!(record.field.as_deref(), Some("file_url"));
    }
}
