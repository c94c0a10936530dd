//! The CLI's errors and their exit codes (SPEC.md): 1 runtime failure, 2 bad input,
//! 3 partial (some clusters failed).

/// An error that ends a command.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad input: arguments, configuration, scenario, environment. Exit 2.
    #[error("{0}")]
    Input(String),
    /// The work failed. Exit 1.
    #[error("{0}")]
    Runtime(String),
    /// Some clusters failed, the rest were handled. Exit 3.
    #[error("{0}")]
    Partial(String),
}

impl AppError {
    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::Input(_) => 2,
            AppError::Runtime(_) => 1,
            AppError::Partial(_) => 3,
        }
    }
}

/// The result of a command.
pub type Result<T> = std::result::Result<T, AppError>;
