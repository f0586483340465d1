//! How subcommands report: one JSON object with `--json`, text otherwise; the exit
//! code carries the verdict.

use serde::Serialize;

/// The verdict a subcommand reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Computation succeeded (no verdict involved). Exit 0.
    Ok,
    /// Verified and accepted. Exit 0.
    Accepted,
    /// Verified and rejected. Exit 1.
    Rejected,
}

impl Status {
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Ok | Status::Accepted => 0,
            Status::Rejected => 1,
        }
    }

    pub fn from_accepted(accepted: bool) -> Self {
        if accepted {
            Status::Accepted
        } else {
            Status::Rejected
        }
    }
}

/// What a subcommand produced.
pub struct Outcome {
    pub status: Status,
    pub json: serde_json::Value,
    pub text: String,
}

impl Outcome {
    /// Build an outcome from a serializable report and its text rendering.
    pub fn new(status: Status, report: &impl Serialize, text: String) -> anyhow::Result<Self> {
        Ok(Self {
            status,
            json: serde_json::to_value(report)?,
            text,
        })
    }

    /// Print and return the exit code.
    pub fn print(&self, json: bool) -> i32 {
        if json {
            match serde_json::to_string_pretty(&self.json) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("error: cannot encode the result as JSON: {e}");
                    return 2;
                }
            }
        } else {
            print!("{}", self.text);
            if !self.text.ends_with('\n') {
                println!();
            }
        }
        self.status.exit_code()
    }
}

/// Report an error (bad input, usage, I/O) and return exit code 2.
pub fn print_error(err: &anyhow::Error, json: bool) -> i32 {
    let message = format!("{err:#}");
    if json {
        let v = serde_json::json!({ "error": message, "exit_code": 2 });
        println!("{v}");
    }
    eprintln!("error: {message}");
    2
}
