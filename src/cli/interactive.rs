//! Interactive mode: a small raw-mode line editor (cursor keys, history, Ctrl-A/E/K/U/W),
//! `?` help at the cursor without losing the line, and Tab completion.

use super::commands::Scope;
use super::{parser, Flow, Shell};
use nix::sys::termios::{self, InputFlags, LocalFlags, SetArg, SpecialCharacterIndices, Termios};
use std::io::{Read, Write};

/// Most lines kept in the history.
const HISTORY: usize = 500;
/// Longest line accepted.
const MAX_LINE: usize = 4096;

/// Puts the terminal in raw mode until dropped.
struct Raw {
    saved: Termios,
}

impl Raw {
    fn enter(echo: bool) -> nix::Result<Raw> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin)?;
        let mut t = saved.clone();
        t.local_flags &= !(LocalFlags::ICANON | LocalFlags::IEXTEN | LocalFlags::ISIG);
        if !echo {
            t.local_flags &= !LocalFlags::ECHO;
        }
        t.input_flags &= !(InputFlags::IXON | InputFlags::ICRNL);
        t.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        t.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        termios::tcsetattr(&stdin, SetArg::TCSADRAIN, &t)?;
        Ok(Raw { saved })
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// What reading a line gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    Line(String),
    /// Ctrl-C: the line was dropped.
    Interrupt,
    /// Ctrl-D on an empty line, or end of input.
    Eof,
}

fn read_byte() -> Option<u8> {
    let mut b = [0u8; 1];
    match std::io::stdin().lock().read(&mut b) {
        Ok(1) => Some(b[0]),
        _ => None,
    }
}

/// The line editor with its history.
#[derive(Default)]
pub struct Editor {
    history: Vec<String>,
}

/// Where the command line is: what help and completion consider.
pub struct Context {
    pub scopes: Vec<Scope>,
    pub config_view: bool,
}

fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

/// Formats the `?` help for a line.
pub fn help_text(line: &str, ctx: &Context) -> String {
    let items = parser::help(line, &ctx.scopes, ctx.config_view);
    if items.is_empty() {
        return "Error: Unrecognized command found at '^' position.\n".into();
    }
    let w = items
        .iter()
        .map(|i| i.word.len())
        .max()
        .unwrap_or(0)
        .max(24);
    items
        .iter()
        .map(|i| {
            if i.help.is_empty() {
                format!("  {}\n", i.word)
            } else {
                format!("  {:<w$} {}\n", i.word, i.help)
            }
        })
        .collect()
}

impl Editor {
    fn redraw(prompt: &str, buf: &[char], cursor: usize) {
        let line: String = buf.iter().collect();
        let mut s = format!("\r{prompt}{line}\x1b[K");
        let back = buf.len() - cursor;
        if back > 0 {
            s.push_str(&format!("\x1b[{back}D"));
        }
        out(&s);
    }

    /// Reads one line in raw mode.
    pub fn read_line(&mut self, prompt: &str, ctx: &Context) -> std::io::Result<Input> {
        let _raw = Raw::enter(false).map_err(std::io::Error::from)?;
        let mut buf: Vec<char> = Vec::new();
        let mut cursor = 0usize;
        let mut hist_pos = self.history.len();
        let mut pending = String::new();
        out(prompt);
        loop {
            let Some(b) = read_byte() else {
                out("\r\n");
                return Ok(Input::Eof);
            };
            match b {
                b'\r' | b'\n' => {
                    out("\r\n");
                    let line: String = buf.iter().collect();
                    if !line.trim().is_empty()
                        && self.history.last().map(String::as_str) != Some(line.as_str())
                    {
                        self.history.push(line.clone());
                        if self.history.len() > HISTORY {
                            self.history.remove(0);
                        }
                    }
                    return Ok(Input::Line(line));
                }
                0x03 => {
                    out("^C\r\n");
                    return Ok(Input::Interrupt);
                }
                0x04 if buf.is_empty() => {
                    out("\r\n");
                    return Ok(Input::Eof);
                }
                0x04 if cursor < buf.len() => {
                    buf.remove(cursor);
                }
                0x7f | 0x08 if cursor > 0 => {
                    cursor -= 1;
                    buf.remove(cursor);
                }
                0x01 => cursor = 0,
                0x05 => cursor = buf.len(),
                0x02 => cursor = cursor.saturating_sub(1),
                0x06 => cursor = (cursor + 1).min(buf.len()),
                0x0b => buf.truncate(cursor),
                0x15 => {
                    buf.drain(..cursor);
                    cursor = 0;
                }
                0x17 => {
                    let mut start = cursor;
                    while start > 0 && buf[start - 1] == ' ' {
                        start -= 1;
                    }
                    while start > 0 && buf[start - 1] != ' ' {
                        start -= 1;
                    }
                    buf.drain(start..cursor);
                    cursor = start;
                }
                0x0c => out("\x1b[H\x1b[2J"),
                b'\t' => {
                    let before: String = buf[..cursor].iter().collect();
                    if let Some(add) = parser::complete(&before, &ctx.scopes, ctx.config_view) {
                        for c in add.chars() {
                            if buf.len() < MAX_LINE {
                                buf.insert(cursor, c);
                                cursor += 1;
                            }
                        }
                    } else {
                        out("\x07");
                    }
                }
                b'?' => {
                    let before: String = buf[..cursor].iter().collect();
                    let line: String = buf.iter().collect();
                    out(&format!("\r{prompt}{line}?\r\n"));
                    out(&help_text(&before, ctx).replace('\n', "\r\n"));
                    out("\r\n");
                }
                0x1b => {
                    let Some(b1) = read_byte() else { continue };
                    if b1 != b'[' && b1 != b'O' {
                        continue;
                    }
                    let Some(b2) = read_byte() else { continue };
                    match b2 {
                        b'A' | b'B' => {
                            if hist_pos == self.history.len() {
                                pending = buf.iter().collect();
                            }
                            if b2 == b'A' && hist_pos > 0 {
                                hist_pos -= 1;
                            } else if b2 == b'B' && hist_pos < self.history.len() {
                                hist_pos += 1;
                            }
                            let text = if hist_pos == self.history.len() {
                                pending.clone()
                            } else {
                                self.history[hist_pos].clone()
                            };
                            buf = text.chars().collect();
                            cursor = buf.len();
                        }
                        b'C' => cursor = (cursor + 1).min(buf.len()),
                        b'D' => cursor = cursor.saturating_sub(1),
                        b'H' => cursor = 0,
                        b'F' => cursor = buf.len(),
                        b'1'..=b'8' => {
                            let mut code = vec![b2];
                            while let Some(c) = read_byte() {
                                if c == b'~' || code.len() > 4 {
                                    break;
                                }
                                code.push(c);
                            }
                            match code.as_slice() {
                                b"3" if cursor < buf.len() => {
                                    buf.remove(cursor);
                                }
                                b"1" | b"7" => cursor = 0,
                                b"4" | b"8" => cursor = buf.len(),
                                _ => {}
                            }
                        }
                        _ => {}
                    }
                }
                c if c >= 0x20 && buf.len() < MAX_LINE => {
                    // Multi-byte UTF-8: collect the continuation bytes.
                    let mut bytes = vec![c];
                    let extra = match c {
                        0xc0..=0xdf => 1,
                        0xe0..=0xef => 2,
                        0xf0..=0xf7 => 3,
                        _ => 0,
                    };
                    for _ in 0..extra {
                        if let Some(b) = read_byte() {
                            bytes.push(b);
                        }
                    }
                    for ch in String::from_utf8_lossy(&bytes).chars() {
                        buf.insert(cursor, ch);
                        cursor += 1;
                    }
                }
                _ => {}
            }
            Self::redraw(prompt, &buf, cursor);
        }
    }
}

/// Asks a question on the terminal; the answer's first word.
pub fn ask(question: &str) -> Option<String> {
    out(&format!("{question} "));
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).ok()?;
    line.split_whitespace().next().map(str::to_string)
}

/// Reads a password without echo.
pub fn read_password(prompt: &str) -> std::io::Result<String> {
    eprint!("{prompt}");
    let mut line = String::new();
    {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin).map_err(std::io::Error::from)?;
        let mut t = saved.clone();
        t.local_flags &= !LocalFlags::ECHO;
        termios::tcsetattr(&stdin, SetArg::TCSADRAIN, &t).map_err(std::io::Error::from)?;
        let r = stdin.read_line(&mut line);
        let _ = termios::tcsetattr(&stdin, SetArg::TCSADRAIN, &saved);
        r?;
    }
    eprintln!();
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// Runs the interactive session until the user leaves; returns the exit status.
pub fn run(shell: &mut Shell) -> i32 {
    let mut editor = Editor::default();
    out("Info: commands edit the candidate; 'commit' applies them. '?' lists what fits.\n");
    loop {
        let prompt = shell.prompt();
        let ctx = Context {
            scopes: shell.view().scopes(),
            config_view: shell.view().is_config(),
        };
        let input = match editor.read_line(&prompt, &ctx) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("Error: terminal: {e}");
                return 1;
            }
        };
        let line = match input {
            Input::Line(l) => l,
            Input::Interrupt => continue,
            Input::Eof if shell.views.len() == 1 => return 0,
            Input::Eof => "quit".to_string(),
        };
        match shell.execute(&line) {
            Ok((text, flow)) => {
                out(&text);
                if flow == Flow::Exit {
                    return 0;
                }
            }
            Err(e) => out(&e.render(Some(prompt.chars().count()))),
        }
    }
}
