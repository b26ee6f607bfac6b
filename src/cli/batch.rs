//! Batch mode: commands from `-c`, a script file or standard input, run in order under the
//! candidate lock; the first error discards the run's uncommitted changes and ends it.

use super::{Flow, Shell};
use std::io::BufRead;

/// Longest script accepted, in lines.
const MAX_LINES: usize = 1_000_000;

/// Reads every line of a script.
pub fn read_all(r: impl BufRead) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for line in r.lines() {
        let line = line.map_err(|e| format!("cannot read the script: {e}"))?;
        if out.len() == MAX_LINES {
            return Err(format!("the script is longer than {MAX_LINES} lines"));
        }
        out.push(line);
    }
    Ok(out)
}

/// Runs the lines; returns the exit status (0 when every command succeeded and nothing was
/// left uncommitted).
pub fn run(shell: &mut Shell, lines: &[String]) -> i32 {
    for (n, line) in lines.iter().enumerate() {
        match shell.execute(line) {
            Ok((out, flow)) => {
                print!("{out}");
                if flow == Flow::Exit {
                    break;
                }
            }
            Err(e) => {
                eprintln!("Error: line {}: {}", n + 1, line.trim());
                eprint!("{}", e.render(None));
                let had_changes = shell.dirty;
                shell.abort();
                if shell.locked || shell.dirty {
                    eprintln!("Error: the uncommitted changes could not be discarded.");
                } else if had_changes {
                    eprintln!("Info: the uncommitted changes of this run were discarded.");
                }
                return 1;
            }
        }
    }
    if shell.dirty {
        eprintln!(
            "Error: the configuration was not committed (no 'commit' after the last change); \
             the uncommitted changes were discarded."
        );
        shell.abort();
        return 1;
    }
    shell.release();
    0
}
