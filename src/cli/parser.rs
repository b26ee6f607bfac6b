//! Command lines against the table: tokens (with quoting), keyword abbreviations, typed
//! parameters, `undo`, and the `?` help and Tab completion candidates at the cursor.

use super::commands::{table, ArgType, Command, Scope, Token, Undo};

/// One word of a command line, with its byte span in the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tok {
    pub text: String,
    pub start: usize,
    pub end: usize,
}

/// Why a line is not a command; positions are byte offsets into the line (for the caret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Unrecognized(usize),
    Wrong(usize, String),
    Incomplete(usize),
    Ambiguous(usize),
    TooMany(usize),
    Quote(usize),
}

impl ParseError {
    pub fn pos(&self) -> usize {
        match self {
            ParseError::Unrecognized(p)
            | ParseError::Wrong(p, _)
            | ParseError::Incomplete(p)
            | ParseError::Ambiguous(p)
            | ParseError::TooMany(p)
            | ParseError::Quote(p) => *p,
        }
    }

    /// The VRP-style message (without the `Error: ` lead).
    pub fn message(&self) -> String {
        match self {
            ParseError::Unrecognized(_) => "Unrecognized command found at '^' position.".into(),
            ParseError::Wrong(_, why) => format!("Wrong parameter found at '^' position. {why}"),
            ParseError::Incomplete(_) => "Incomplete command found at '^' position.".into(),
            ParseError::Ambiguous(_) => "Ambiguous command found at '^' position.".into(),
            ParseError::TooMany(_) => "Too many parameters found at '^' position.".into(),
            ParseError::Quote(_) => "Unterminated quotation found at '^' position.".into(),
        }
    }

    /// How far into the line the parse got (the deepest error wins across views).
    fn depth(&self) -> (usize, u8) {
        let rank = match self {
            ParseError::Unrecognized(_) => 0,
            ParseError::TooMany(_) => 1,
            ParseError::Incomplete(_) => 2,
            ParseError::Ambiguous(_) => 3,
            ParseError::Wrong(..) | ParseError::Quote(_) => 4,
        };
        (self.pos(), rank)
    }

    /// The more informative of two errors.
    pub fn deeper(self, other: ParseError) -> ParseError {
        if other.depth() > self.depth() {
            other
        } else {
            self
        }
    }
}

/// Splits a line into words; `"..."` quotes a word (with `\"` and `\\` inside).
pub fn tokenize(line: &str) -> Result<Vec<Tok>, ParseError> {
    let mut out = Vec::new();
    let mut chars = line.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let start = i;
        let mut text = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            while let Some((_, c)) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            text.push(n);
                        }
                    }
                    c => text.push(c),
                }
            }
            if !closed {
                return Err(ParseError::Quote(start));
            }
        } else {
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                text.push(c);
                chars.next();
            }
        }
        let end = chars.peek().map(|(i, _)| *i).unwrap_or(line.len());
        out.push(Tok { text, start, end });
    }
    Ok(out)
}

/// A line that matched a command.
#[derive(Debug, Clone)]
pub struct Matched {
    pub cmd: &'static Command,
    /// The typed text of each pattern token (keywords in full); shorter than the pattern
    /// only for `undo`.
    pub args: Vec<String>,
    pub undo: bool,
}

fn in_scope(c: &Command, scopes: &[Scope], undo: bool) -> bool {
    !c.render_only && scopes.contains(&c.scope) && (!undo || c.is_config())
}

struct Cand {
    cmd: &'static Command,
    args: Vec<String>,
    /// A `line` parameter took the rest of the input.
    absorbed: bool,
}

/// Narrows the candidates word by word. Returns the survivors, or the error at the word
/// where none survived.
fn narrow(
    line: &str,
    toks: &[Tok],
    mut cands: Vec<Cand>,
    lenient_last: bool,
) -> Result<Vec<Cand>, ParseError> {
    // A parameter refused on the way explains a later dead end better than "too many".
    let mut refused: Option<ParseError> = None;
    for (i, tok) in toks.iter().enumerate() {
        if lenient_last && i + 1 == toks.len() {
            break;
        }
        let word = tok.text.to_ascii_lowercase();
        let mut exact = Vec::new();
        let mut params = Vec::new();
        let mut prefix: Vec<Cand> = Vec::new();
        let mut wrong: Option<String> = None;
        let mut too_many = false;
        let mut had_word = false;
        let mut done = Vec::new();
        for mut c in cands {
            if c.absorbed {
                done.push(c);
                continue;
            }
            match c.cmd.tokens.get(i) {
                None => too_many = true,
                Some(Token::Kw(k)) => {
                    had_word = true;
                    if *k == word {
                        c.args.push(k.to_string());
                        exact.push(c);
                    } else if !word.is_empty() && k.starts_with(&word) {
                        c.args.push(k.to_string());
                        prefix.push(c);
                    }
                }
                Some(Token::Param { ty, .. }) => {
                    if let ArgType::Line(_) = ty {
                        let rest = if i + 1 == toks.len() {
                            tok.text.clone()
                        } else {
                            line[tok.start..].trim_end().to_string()
                        };
                        match ty.check(&rest) {
                            Ok(()) => {
                                c.args.push(rest);
                                c.absorbed = true;
                                params.push(c);
                            }
                            Err(e) => wrong = Some(e),
                        }
                    } else {
                        match ty.check(&tok.text) {
                            Ok(()) => {
                                c.args.push(tok.text.clone());
                                params.push(c);
                            }
                            Err(e) => wrong = Some(e),
                        }
                    }
                }
            }
        }
        let next = if !exact.is_empty() || !params.is_empty() {
            exact.into_iter().chain(params).collect::<Vec<_>>()
        } else if !prefix.is_empty() {
            let mut kws: Vec<&str> = prefix
                .iter()
                .filter_map(|c| match c.cmd.tokens.get(i) {
                    Some(Token::Kw(k)) => Some(*k),
                    _ => None,
                })
                .collect();
            kws.sort();
            kws.dedup();
            if kws.len() > 1 {
                return Err(ParseError::Ambiguous(tok.start));
            }
            prefix
        } else if !done.is_empty() {
            done
        } else if let Some(why) = wrong {
            return Err(ParseError::Wrong(tok.start, why));
        } else if let Some(r) = refused {
            return Err(r);
        } else if too_many && !had_word {
            return Err(ParseError::TooMany(tok.start));
        } else {
            return Err(ParseError::Unrecognized(tok.start));
        };
        if let Some(why) = wrong {
            refused = Some(ParseError::Wrong(tok.start, why));
        }
        cands = next;
        if cands.iter().all(|c| c.absorbed) {
            break;
        }
    }
    Ok(cands)
}

/// Splits off a leading `undo` (or an abbreviation of it of two letters or more).
fn split_undo(toks: &[Tok]) -> (bool, &[Tok]) {
    match toks.first() {
        Some(t) if t.text.len() >= 2 && "undo".starts_with(&t.text.to_ascii_lowercase()) => {
            (true, &toks[1..])
        }
        _ => (false, toks),
    }
}

/// The commands of `scopes` a line may name (only config commands after `undo`), none matched yet.
fn candidates(scopes: &[Scope], undo: bool) -> Vec<Cand> {
    table()
        .iter()
        .filter(|c| in_scope(c, scopes, undo))
        .map(|cmd| Cand {
            cmd,
            args: Vec::new(),
            absorbed: false,
        })
        .collect()
}

/// Matches a whole line against the commands of `scopes`.
pub fn parse(line: &str, scopes: &[Scope]) -> Result<Matched, ParseError> {
    let toks = tokenize(line)?;
    let (undo, rest) = split_undo(&toks);
    if rest.is_empty() {
        return Err(ParseError::Incomplete(line.trim_end().len() + 1));
    }
    let cands = candidates(scopes, undo);
    if cands.is_empty() {
        return Err(ParseError::Unrecognized(toks[0].start));
    }
    let cands = narrow(line, rest, cands, false)?;
    let n = rest.len();
    let complete: Vec<&Cand> = cands
        .iter()
        .filter(|c| {
            c.absorbed
                || c.cmd.tokens.len() == n
                || (undo && n >= c.cmd.undo_len && n <= c.cmd.tokens.len())
        })
        .collect();
    let pick = match complete.len() {
        0 => return Err(ParseError::Incomplete(line.trim_end().len() + 1)),
        1 => complete[0],
        _ => {
            let full: Vec<&&Cand> = complete
                .iter()
                .filter(|c| c.absorbed || c.cmd.tokens.len() == n)
                .collect();
            match full.len() {
                1 => full[0],
                0 if matches!(complete[0].cmd.undo, Undo::Delete(_))
                    && complete.iter().all(|c| c.cmd.undo == complete[0].cmd.undo) =>
                {
                    // Spellings of one node (a key in clear or cipher text): undo deletes it.
                    complete[0]
                }
                0 => {
                    // Several commands undo with these words: the shortest pattern is meant.
                    let min = complete
                        .iter()
                        .map(|c| c.cmd.tokens.len())
                        .min()
                        .unwrap_or(0);
                    let shortest: Vec<&&Cand> = complete
                        .iter()
                        .filter(|c| c.cmd.tokens.len() == min)
                        .collect();
                    if shortest.len() != 1 {
                        return Err(ParseError::Ambiguous(rest[n - 1].start));
                    }
                    shortest[0]
                }
                _ => return Err(ParseError::Ambiguous(rest[n - 1].start)),
            }
        }
    };
    Ok(Matched {
        cmd: pick.cmd,
        args: pick.args.clone(),
        undo,
    })
}

/// One line of `?` help: the word (or `<placeholder>`) and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpItem {
    pub word: String,
    pub help: String,
    pub is_keyword: bool,
}

/// What may come next at the end of `line` (the partial last word filters keywords).
pub fn help(line: &str, scopes: &[Scope], config_view: bool) -> Vec<HelpItem> {
    let Ok(toks) = tokenize(line) else {
        return Vec::new();
    };
    let ends_in_space = line.is_empty() || line.ends_with(char::is_whitespace);
    let partial = if ends_in_space {
        String::new()
    } else {
        toks.last()
            .map(|t| t.text.to_ascii_lowercase())
            .unwrap_or_default()
    };
    let complete_toks: &[Tok] = if ends_in_space {
        &toks
    } else {
        &toks[..toks.len().saturating_sub(1)]
    };
    let (undo, rest) = split_undo(complete_toks);
    let mut items: Vec<HelpItem> = Vec::new();
    if complete_toks.is_empty() && config_view && "undo".starts_with(&partial) {
        items.push(HelpItem {
            word: "undo".into(),
            help: "Negate a command or set its default".into(),
            is_keyword: true,
        });
    }
    let cands = candidates(scopes, undo);
    let Ok(cands) = narrow(line, rest, cands, false) else {
        return items;
    };
    let n = rest.len();
    let mut cr = false;
    for c in &cands {
        if c.absorbed {
            cr = true;
            continue;
        }
        if c.cmd.tokens.len() == n || (undo && n >= c.cmd.undo_len && n <= c.cmd.tokens.len()) {
            cr = true;
        }
        let Some(t) = c.cmd.tokens.get(n) else {
            continue;
        };
        let last = n + 1 == c.cmd.tokens.len();
        match t {
            Token::Kw(k) => {
                if !k.starts_with(&partial) {
                    continue;
                }
                let help = if last || n == 0 && c.cmd.tokens.len() == 1 {
                    c.cmd.help.to_string()
                } else {
                    super::commands::keyword_help(k)
                        .unwrap_or(c.cmd.help)
                        .to_string()
                };
                if !items.iter().any(|i| i.word == *k) {
                    items.push(HelpItem {
                        word: k.to_string(),
                        help,
                        is_keyword: true,
                    });
                }
            }
            Token::Param { name, ty, default } => {
                let word = ty.describe();
                let mut help = format!("{} ({name})", c.cmd.help);
                if let Some(d) = default {
                    help.push_str(&format!(", default {d}"));
                }
                if !items.iter().any(|i| i.word == word) {
                    items.push(HelpItem {
                        word,
                        help,
                        is_keyword: false,
                    });
                }
            }
        }
    }
    if cr && partial.is_empty() {
        items.push(HelpItem {
            word: "<cr>".into(),
            help: String::new(),
            is_keyword: false,
        });
    }
    items
}

/// The completion of the last word of `line`: the text to insert, if the keywords that fit
/// agree on more letters.
pub fn complete(line: &str, scopes: &[Scope], config_view: bool) -> Option<String> {
    if line.is_empty() || line.ends_with(char::is_whitespace) {
        return None;
    }
    let toks = tokenize(line).ok()?;
    let partial = toks.last()?.text.to_ascii_lowercase();
    let words: Vec<String> = help(line, scopes, config_view)
        .into_iter()
        .filter(|i| i.is_keyword)
        .map(|i| i.word)
        .collect();
    if words.is_empty() {
        return None;
    }
    if words.len() == 1 {
        return Some(format!("{} ", &words[0][partial.len()..]));
    }
    let mut common = words[0].clone();
    for w in &words[1..] {
        let n = common
            .chars()
            .zip(w.chars())
            .take_while(|(a, b)| a == b)
            .count();
        common.truncate(n);
    }
    (common.len() > partial.len()).then(|| common[partial.len()..].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use Scope::*;

    const SYS: &[Scope] = &[System, Config, Global];
    const IF: &[Scope] = &[Iface, IfacePort, Config, Global];
    const TRUNK: &[Scope] = &[Iface, IfaceTrunk, Config, Global];

    #[test]
    fn tokens_and_quotes() {
        let t = tokenize(r#" description "a \"b\" c"  x"#).unwrap();
        assert_eq!(t[1].text, r#"a "b" c"#);
        assert_eq!(t[2].text, "x");
        assert_eq!(tokenize("a \"b"), Err(ParseError::Quote(2)));
    }

    #[test]
    fn abbreviations_and_parameters() {
        let m = parse("dis cur", SYS).unwrap();
        assert_eq!(m.args, vec!["display", "current-configuration"]);
        let m = parse("vrrp6 vrid 1 virtual-ip fe80::1 link-local", IF).unwrap();
        assert!(m.cmd.pattern().ends_with("link-local"));
        let m = parse("vrrp6 vrid 1 virtual-ip 2001:db8::1", IF).unwrap();
        assert!(m.cmd.pattern().ends_with("<address>"));
        let m = parse("description two words  here", IF).unwrap();
        assert_eq!(m.args[1], "two words  here");
        assert!(parse("e-trunk 1", TRUNK).is_ok());
        assert!(parse("e-trunk mode force-master", TRUNK).is_ok());
    }

    #[test]
    fn errors_point_at_the_word() {
        let e = parse("vrrp6 vrid 1 priority 300", IF).unwrap_err();
        assert_eq!(e.pos(), 22);
        assert!(e.message().contains("1-254"), "{}", e.message());
        assert_eq!(
            parse("vrrp6 vrid 1 bogus", IF).unwrap_err(),
            ParseError::Unrecognized(13)
        );
        assert!(parse("vrrp6 vrid 1", IF).is_ok());
        assert!(matches!(
            parse("mld timer", IF).unwrap_err(),
            ParseError::Incomplete(_)
        ));
        assert!(matches!(
            parse("mld enable now", IF).unwrap_err(),
            ParseError::TooMany(11)
        ));
        assert!(matches!(
            parse("display remote-backup-", SYS).unwrap_err(),
            ParseError::Ambiguous(8)
        ));
        assert!(parse("eth-trunk 1", TRUNK).is_err());
        let e = parse("vrrp6 vrid 1 virtual-ip 2001:db8::5 link-local", IF).unwrap_err();
        assert_eq!(e.pos(), 24);
        assert!(e.message().contains("link-local"), "{}", e.message());
    }

    #[test]
    fn undo_takes_the_identifying_words() {
        let m = parse("undo vrrp6 vrid 1 priority", IF).unwrap();
        assert!(m.undo && m.cmd.pattern().ends_with("priority <priority>"));
        let m = parse("undo vrrp6 vrid 1", IF).unwrap();
        assert_eq!(m.cmd.pattern(), "vrrp6 vrid <vrid>");
        let m = parse("undo interface eth1", SYS).unwrap();
        assert_eq!(m.cmd.pattern(), "interface <name>");
        assert!(parse("undo display this", SYS).is_err());
        let m = parse("undo mld static-group ff0e::1", IF).unwrap();
        assert_eq!(m.cmd.pattern(), "mld static-group <group>");
    }

    #[test]
    fn help_lists_what_fits_at_the_cursor() {
        let words: Vec<String> = help("mld ", IF, true).into_iter().map(|i| i.word).collect();
        assert!(words.contains(&"enable".to_string()), "{words:?}");
        assert!(words.contains(&"static-group".to_string()));
        let words: Vec<String> = help("vrrp6 vrid 1 priority ", IF, true)
            .into_iter()
            .map(|i| i.word)
            .collect();
        assert_eq!(words, vec!["INTEGER<1-254>"]);
        let words: Vec<String> = help("mld enable ", IF, true)
            .into_iter()
            .map(|i| i.word)
            .collect();
        assert_eq!(words, vec!["<cr>"]);
        assert_eq!(complete("mld ena", IF, true).as_deref(), Some("ble "));
        assert_eq!(complete("dis", SYS, true).as_deref(), Some("play "));
        assert_eq!(
            complete("display mld i", SYS, true).as_deref(),
            Some("nterface ")
        );
    }
}
