use crate::bindings::types::RegistryError;

/// A plugin-side error; each variant reaches the user as a typed error.
pub type Error = RegistryError;

impl RegistryError {
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }
    pub fn invalid(what: impl Into<String>) -> Self {
        Self::Invalid(what.into())
    }
    pub fn io(what: impl Into<String>) -> Self {
        Self::Io(what.into())
    }
    /// The text alone, for a log line (the binding's `Display` shows the
    /// variant, as `RegistryError::Invalid("...")`).
    pub fn message(&self) -> &str {
        match self {
            Self::NotFound(m)
            | Self::AlreadyExists(m)
            | Self::Invalid(m)
            | Self::Io(m)
            | Self::Security(m)
            | Self::Unsupported(m)
            | Self::Internal(m) => m,
        }
    }
}

impl From<std::io::Error> for RegistryError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            RegistryError::NotFound(e.to_string())
        } else {
            RegistryError::Io(e.to_string())
        }
    }
}
