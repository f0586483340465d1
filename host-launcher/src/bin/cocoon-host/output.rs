//! How subcommands report: one JSON object with `--json`, text otherwise; the exit
//! code carries the verdict (0 ok, 1 failed check / gave up, 2 bad input or usage).

use serde::Serialize;

/// The verdict a subcommand reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Done, or every check passed. Exit 0.
    Ok,
    /// A check failed, or the supervisor gave up. Exit 1.
    Failed,
}

/// What a subcommand produced.
pub struct Outcome {
    pub status: Status,
    pub json: serde_json::Value,
    pub text: String,
}

impl Outcome {
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
        } else if !self.text.is_empty() {
            print!("{}", self.text);
            if !self.text.ends_with('\n') {
                println!();
            }
        }
        match self.status {
            Status::Ok => 0,
            Status::Failed => 1,
        }
    }
}

/// Report an error and return its exit code: 1 for a run that failed (gave up, not
/// ready in time), 2 for bad input.
pub fn print_error(err: &anyhow::Error, json: bool) -> i32 {
    let code = if err
        .downcast_ref::<cocoon_host::run::RunError>()
        .is_some_and(|e| {
            matches!(
                e,
                cocoon_host::run::RunError::GaveUp { .. }
                    | cocoon_host::run::RunError::ReadyTimeout { .. }
            )
        }) {
        1
    } else {
        2
    };
    let message = format!("{err:#}");
    if json {
        println!(
            "{}",
            serde_json::json!({ "error": message, "exit_code": code })
        );
    }
    eprintln!("error: {message}");
    code
}
