//! `kaggle-solver policy check FILE...`: validates policy files the way jobs will read them.

use std::path::PathBuf;
use std::process::ExitCode;

/// Policy commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum PolicyCommand {
    /// Check that each file is a valid policy; print the first error of each invalid one.
    Check {
        /// Policy files to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

impl PolicyCommand {
    pub(crate) fn run(self) -> ExitCode {
        let Self::Check { files } = self;
        let mut failed = 0usize;
        for file in &files {
            match ks_policies::Policy::from_file(file) {
                Ok(_) => println!("ok: {}", file.display()),
                Err(error) => {
                    failed += 1;
                    println!("error: {error}");
                }
            }
        }
        if failed == 0 {
            ExitCode::SUCCESS
        } else {
            eprintln!("{failed} of {} policy files are invalid", files.len());
            ExitCode::FAILURE
        }
    }
}
