//! Why a report was refused.

/// A report that cannot be accepted. `Display` names the problem and, where there is
/// one, the field path (`vm_specs.num_cpus`, `nodes_uuid[2]`). Messages never quote
/// string values from the report, only their shape, so they are safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("body is not UTF-8: invalid byte sequence at offset {offset}")]
    NotUtf8 { offset: usize },
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("expected a JSON object at the top level, found {found}")]
    NotAnObject { found: &'static str },
    #[error("document nested deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("field `{field}`: required but missing")]
    MissingField { field: String },
    #[error("field `{field}`: {reason}")]
    InvalidField { field: String, reason: String },
    /// `max` is bytes for a string or key, elements for an array, keys for an object.
    #[error("field `{field}`: longer than the limit of {max} (bytes, elements or keys)")]
    TooLong { field: String, max: usize },
}

impl ReportError {
    /// The dotted path of the offending field, when the problem is in one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::MissingField { field }
            | Self::InvalidField { field, .. }
            | Self::TooLong { field, .. } => Some(field),
            Self::NotUtf8 { .. }
            | Self::Syntax { .. }
            | Self::NotAnObject { .. }
            | Self::TooDeep { .. } => None,
        }
    }

    /// Stable machine-readable code for API answers and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotUtf8 { .. } => "NOT_UTF8",
            Self::Syntax { .. } => "MALFORMED_JSON",
            Self::NotAnObject { .. } => "NOT_AN_OBJECT",
            Self::TooDeep { .. } => "TOO_DEEP",
            Self::MissingField { .. } => "MISSING_FIELD",
            Self::InvalidField { .. } => "INVALID_FIELD",
            Self::TooLong { .. } => "TOO_LONG",
        }
    }

    pub(crate) fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}
