//! Text to [`JsonPath`].

use super::filter::{self, Filter};
use super::{JsonPath, Root, Segment};

pub(super) fn parse(text: &str) -> Result<JsonPath, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut cursor = Cursor {
        text,
        chars: &chars,
        pos: 0,
        in_filter: 0,
    };
    let root = cursor.root()?;
    let mut segments = Vec::new();
    while cursor.pos < chars.len() {
        segments.push(cursor.segment()?);
    }
    Ok(JsonPath { root, segments })
}

/// A variable name: what may follow `$` to name a variable rather than start a segment.
pub fn is_name_char(c: char, first: bool) -> bool {
    c == '_' || c.is_alphabetic() || (!first && c.is_alphanumeric())
}

pub(super) struct Cursor<'a> {
    pub text: &'a str,
    pub chars: &'a [char],
    pub pos: usize,
    /// Inside a filter a field name also ends where an operator or `)` starts.
    pub in_filter: usize,
}

impl Cursor<'_> {
    pub fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    pub fn error(&self, what: &str) -> String {
        format!("path {:?}: {what} at position {}", self.text, self.pos)
    }

    fn root(&mut self) -> Result<Root, String> {
        if self.peek() != Some('$') {
            return Err(format!("path {:?} must start with $", self.text));
        }
        self.pos += 1;
        match self.peek() {
            Some('$') => {
                self.pos += 1;
                Ok(Root::Context)
            }
            Some(c) if is_name_char(c, true) => {
                let name = self.take_while(|c| is_name_char(c, false));
                Ok(Root::Variable(name))
            }
            _ => Ok(Root::Input),
        }
    }

    pub fn take_while(&mut self, keep: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    pub fn segment(&mut self) -> Result<Segment, String> {
        match self.peek() {
            Some('.') => {
                self.pos += 1;
                if self.peek() == Some('.') {
                    self.pos += 1;
                    return match self.dotted_name()? {
                        Segment::Field(name) => Ok(Segment::Descendants(Some(name))),
                        _ => Ok(Segment::Descendants(None)),
                    };
                }
                self.dotted_name()
            }
            Some('[') => self.bracket(),
            _ => Err(self.error("expected '.' or '['")),
        }
    }

    /// The name after a dot: a field, or `*`.
    fn dotted_name(&mut self) -> Result<Segment, String> {
        if self.peek() == Some('*') {
            self.pos += 1;
            return Ok(Segment::Wildcard);
        }
        let in_filter = self.in_filter > 0;
        let name = self.take_while(|c| {
            !matches!(c, '.' | '[')
                && !(in_filter
                    && (c.is_whitespace() || matches!(c, ')' | '=' | '!' | '<' | '>' | '&' | '|')))
        });
        if name.is_empty() {
            return Err(self.error("empty field name"));
        }
        Ok(Segment::Field(name))
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn bracket(&mut self) -> Result<Segment, String> {
        self.pos += 1;
        self.skip_spaces();
        let segment = match self.peek() {
            Some('*') => {
                self.pos += 1;
                Segment::Wildcard
            }
            Some('?') => {
                self.pos += 1;
                Segment::Filter(self.filter()?)
            }
            Some('\'' | '"') => self.names()?,
            _ => self.numbers()?,
        };
        self.skip_spaces();
        if self.peek() != Some(']') {
            return Err(self.error("expected ']'"));
        }
        self.pos += 1;
        Ok(segment)
    }

    fn filter(&mut self) -> Result<Filter, String> {
        self.skip_spaces();
        if self.peek() != Some('(') {
            return Err(self.error("expected '(' after '?'"));
        }
        self.pos += 1;
        self.in_filter += 1;
        let filter = filter::parse(self);
        self.in_filter -= 1;
        let filter = filter?;
        self.skip_spaces();
        if self.peek() != Some(')') {
            return Err(self.error("expected ')' closing the filter"));
        }
        self.pos += 1;
        Ok(filter)
    }

    pub fn quoted(&mut self) -> Result<String, String> {
        let quote = self.peek().ok_or_else(|| self.error("expected a quote"))?;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some('\\') => {
                    self.pos += 1;
                    out.extend(self.peek());
                }
                Some(c) if c == quote => break,
                Some(c) => out.push(c),
            }
            self.pos += 1;
        }
        self.pos += 1;
        Ok(out)
    }

    /// `['a']` or `['a', 'b']`.
    fn names(&mut self) -> Result<Segment, String> {
        let mut names = vec![self.quoted()?];
        loop {
            self.skip_spaces();
            if self.peek() != Some(',') {
                break;
            }
            self.pos += 1;
            self.skip_spaces();
            names.push(self.quoted()?);
        }
        Ok(match names.len() {
            1 => Segment::Field(names.remove(0)),
            _ => Segment::Union(names.into_iter().map(Segment::Field).collect()),
        })
    }

    fn integer(&mut self) -> Result<Option<i64>, String> {
        self.skip_spaces();
        let text = self.take_while(|c| c == '-' || c.is_ascii_digit());
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|_| self.error(&format!("{text:?} is not an integer")))
    }

    /// `[1]`, `[0,2]` or a slice `[a:b:c]`.
    fn numbers(&mut self) -> Result<Segment, String> {
        let first = self.integer()?;
        self.skip_spaces();
        match self.peek() {
            Some(':') => {
                self.pos += 1;
                let end = self.integer()?;
                self.skip_spaces();
                let step = if self.peek() == Some(':') {
                    self.pos += 1;
                    self.integer()?.unwrap_or(1)
                } else {
                    1
                };
                if step == 0 {
                    return Err(self.error("slice step must not be 0"));
                }
                // |i64::MIN| does not fit in an i64, so no step arithmetic could use it.
                if step == i64::MIN {
                    return Err(self.error(&format!("slice step {step} is out of range")));
                }
                Ok(Segment::Slice(first, end, step))
            }
            Some(',') => {
                let mut indexes = vec![Segment::Index(
                    first.ok_or_else(|| self.error("expected an index"))?,
                )];
                while self.peek() == Some(',') {
                    self.pos += 1;
                    let next = self
                        .integer()?
                        .ok_or_else(|| self.error("expected an index"))?;
                    indexes.push(Segment::Index(next));
                    self.skip_spaces();
                }
                Ok(Segment::Union(indexes))
            }
            _ => first
                .map(Segment::Index)
                .ok_or_else(|| self.error("unsupported selector")),
        }
    }
}
