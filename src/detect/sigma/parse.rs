//! A Sigma rule file read into the parts the compiler needs: metadata, search identifiers and
//! the condition, each checked for shape with a message naming what is wrong.

use yaml_rust2::{Yaml, YamlLoader};

/// One Sigma rule as written.
#[derive(Debug, Clone)]
pub struct Rule {
    pub title: String,
    pub id: Option<String>,
    pub status: Option<String>,
    pub level: Option<String>,
    pub author: String,
    pub description: String,
    pub tags: Vec<String>,
    pub category: Option<String>,
    pub product: Option<String>,
    /// The rule's `fields:` list: what an analyst wants to see beside a hit.
    pub fields: Vec<String>,
    /// Search identifiers in the order the rule defines them.
    pub searches: Vec<(String, Search)>,
    pub condition: Condition,
    /// A Sigma 1.x `| count() by ...` after the condition, if any.
    pub aggregation: Option<Aggregation>,
    pub timeframe: Option<String>,
}

/// A search identifier's body: alternatives (a list of maps is an OR), each an AND of items.
#[derive(Debug, Clone, PartialEq)]
pub struct Search {
    pub alternatives: Vec<Vec<Item>>,
}

/// `field|mod|mod: values`, or field-less keywords (`field` is None).
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub field: Option<String>,
    pub modifiers: Vec<String>,
    pub values: Vec<Value>,
}

/// A value as YAML gave it; numbers stay numbers so integer columns compare as integers.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Int(i64),
    Null,
}

impl Value {
    /// The value as text (numbers and booleans as written).
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Null => None,
        }
    }
}

/// A rule's condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Id(String),
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
    /// `1 of pattern` (`them` is `*`).
    OneOf(String),
    /// `all of pattern`.
    AllOf(String),
}

/// What a legacy aggregation computes.
#[derive(Debug, Clone, PartialEq)]
pub enum AggFunc {
    /// `count()`: rows; `count(field)`: distinct values of the field.
    Count(Option<String>),
    Sum(String),
    Min(String),
    Max(String),
    Avg(String),
}

/// `| count(field) by group > N`.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregation {
    pub func: AggFunc,
    pub by: Option<String>,
    pub op: String,
    pub threshold: f64,
}

/// Why a file is not a rule we can read.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(msg.into()))
}

fn scalar_text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string_list(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Array(a) => a.iter().filter_map(scalar_text).collect(),
        other => scalar_text(other).into_iter().collect(),
    }
}

impl Rule {
    /// Reads a rule from YAML text. Multi-document files (Sigma 1.x rule collections) and
    /// correlation rules are refused with that reason.
    pub fn parse(text: &str) -> Result<Rule, ParseError> {
        let docs = YamlLoader::load_from_str(text).map_err(|e| ParseError(format!("not valid YAML: {e}")))?;
        if docs.len() != 1 {
            return err(format!(
                "{} YAML documents in one file: rule collections (action: global) are not supported",
                docs.len()
            ));
        }
        let doc = &docs[0];
        let Yaml::Hash(top) = doc else { return err("the file is not a YAML mapping") };
        let get = |k: &str| top.get(&Yaml::String(k.to_string()));
        let text_of = |k: &str| get(k).and_then(scalar_text);
        if get("correlation").is_some() {
            return err("a correlation rule: correlations are not compiled");
        }
        let title = text_of("title").ok_or_else(|| ParseError("no `title:`".into()))?;
        let logsource = get("logsource");
        let ls = |k: &str| match logsource {
            Some(Yaml::Hash(h)) => h.get(&Yaml::String(k.to_string())).and_then(scalar_text),
            _ => None,
        };
        let Some(Yaml::Hash(det)) = get("detection") else { return err("no `detection:` mapping") };
        let mut searches = Vec::new();
        let mut condition = None;
        let mut timeframe = None;
        for (k, v) in det {
            let Some(name) = scalar_text(k) else { return err("a detection key that is not text") };
            match name.as_str() {
                "condition" => condition = Some(v.clone()),
                "timeframe" => timeframe = scalar_text(v),
                _ => searches.push((name.clone(), parse_search(&name, v)?)),
            }
        }
        let condition = match condition {
            Some(Yaml::Array(list)) if list.len() == 1 => scalar_text(&list[0]),
            Some(Yaml::Array(_)) => return err("several conditions in one rule are not supported"),
            Some(other) => scalar_text(&other),
            None => None,
        }
        .ok_or_else(|| ParseError("no `condition:` in the detection".into()))?;
        let (cond_text, agg_text) = match condition.split_once('|') {
            Some((c, a)) => (c, Some(a)),
            None => (condition.as_str(), None),
        };
        let condition = parse_condition(cond_text)?;
        let aggregation = agg_text.map(parse_aggregation).transpose()?;
        Ok(Rule {
            title,
            id: text_of("id"),
            status: text_of("status"),
            level: text_of("level"),
            author: text_of("author").unwrap_or_default(),
            description: text_of("description")
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            tags: get("tags").map(string_list).unwrap_or_default(),
            category: ls("category"),
            product: ls("product"),
            fields: get("fields").map(string_list).unwrap_or_default(),
            searches,
            condition,
            aggregation,
            timeframe,
        })
    }
}

fn parse_values(y: &Yaml) -> Result<Vec<Value>, String> {
    let one = |y: &Yaml| match y {
        Yaml::Null => Ok(Value::Null),
        Yaml::Integer(i) => Ok(Value::Int(*i)),
        other => scalar_text(other).map(Value::Str).ok_or_else(|| "a value that is not a scalar".to_string()),
    };
    match y {
        Yaml::Array(a) => a.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

fn parse_map(name: &str, h: &yaml_rust2::yaml::Hash) -> Result<Vec<Item>, ParseError> {
    let mut items = Vec::new();
    for (k, v) in h {
        let key = scalar_text(k).ok_or_else(|| ParseError(format!("{name}: a key that is not text")))?;
        let mut parts = key.split('|');
        let field = parts.next().unwrap_or_default().trim();
        let modifiers: Vec<String> = parts.map(|m| m.trim().to_string()).collect();
        let values = parse_values(v).map_err(|e| ParseError(format!("{name}: {key}: {e}")))?;
        let field = (!field.is_empty()).then(|| field.to_string());
        items.push(Item { field, modifiers, values });
    }
    Ok(items)
}

fn parse_search(name: &str, y: &Yaml) -> Result<Search, ParseError> {
    let alternatives = match y {
        Yaml::Hash(h) => vec![parse_map(name, h)?],
        Yaml::Array(list) => {
            let mut alts = Vec::new();
            let mut keywords = Vec::new();
            for entry in list {
                match entry {
                    Yaml::Hash(h) => alts.push(parse_map(name, h)?),
                    other => {
                        keywords.extend(parse_values(other).map_err(|e| ParseError(format!("{name}: {e}")))?)
                    }
                }
            }
            if !keywords.is_empty() {
                alts.push(vec![Item { field: None, modifiers: Vec::new(), values: keywords }]);
            }
            alts
        }
        other => {
            let values = parse_values(other).map_err(|e| ParseError(format!("{name}: {e}")))?;
            vec![vec![Item { field: None, modifiers: Vec::new(), values }]]
        }
    };
    if alternatives.is_empty() {
        return err(format!("search {name} is empty"));
    }
    Ok(Search { alternatives })
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Open,
    Close,
}

fn tokens(s: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in s.chars() {
        if c == '(' || c == ')' || c.is_whitespace() {
            if !word.is_empty() {
                out.push(Tok::Word(std::mem::take(&mut word)));
            }
            match c {
                '(' => out.push(Tok::Open),
                ')' => out.push(Tok::Close),
                _ => {}
            }
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        out.push(Tok::Word(word));
    }
    out
}

/// Parses a condition: `or` binds loosest, then `and`, then `not`; `1 of`/`all of` take a
/// name pattern or `them`.
pub fn parse_condition(s: &str) -> Result<Condition, ParseError> {
    let toks = tokens(s);
    let mut p = CondParser { toks: &toks, pos: 0, text: s };
    let c = p.or()?;
    if p.pos != toks.len() {
        return err(format!("condition {s:?}: unexpected {:?} at word {}", toks[p.pos], p.pos + 1));
    }
    Ok(c)
}

struct CondParser<'a> {
    toks: &'a [Tok],
    pos: usize,
    text: &'a str,
}

impl CondParser<'_> {
    fn keyword(&self, k: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(k))
    }

    fn fail<T>(&self, what: &str) -> Result<T, ParseError> {
        err(format!("condition {:?}: {what}", self.text))
    }

    fn or(&mut self) -> Result<Condition, ParseError> {
        let mut parts = vec![self.and()?];
        while self.keyword("or") {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Condition::Or(parts) })
    }

    fn and(&mut self) -> Result<Condition, ParseError> {
        let mut parts = vec![self.not()?];
        while self.keyword("and") {
            self.pos += 1;
            parts.push(self.not()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Condition::And(parts) })
    }

    fn not(&mut self) -> Result<Condition, ParseError> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Condition::Not(Box::new(self.not()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Condition, ParseError> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Open) => {
                self.pos += 1;
                let c = self.or()?;
                if self.toks.get(self.pos) != Some(&Tok::Close) {
                    return self.fail("a `(` without its `)`");
                }
                self.pos += 1;
                Ok(c)
            }
            Some(Tok::Word(w)) => {
                self.pos += 1;
                let quantifier = if w == "1" || w.eq_ignore_ascii_case("any") {
                    Some(true)
                } else if w.eq_ignore_ascii_case("all") {
                    Some(false)
                } else {
                    None
                };
                if let Some(one) = quantifier
                    && self.keyword("of")
                {
                    self.pos += 1;
                    let Some(Tok::Word(pattern)) = self.toks.get(self.pos).cloned() else {
                        return self.fail(&format!("`{w} of` needs a name pattern or `them`"));
                    };
                    self.pos += 1;
                    let pattern =
                        if pattern.eq_ignore_ascii_case("them") { "*".to_string() } else { pattern };
                    return Ok(if one { Condition::OneOf(pattern) } else { Condition::AllOf(pattern) });
                }
                if ["and", "or", "of"].iter().any(|k| w.eq_ignore_ascii_case(k)) {
                    return self.fail(&format!("`{w}` where a search identifier was expected"));
                }
                Ok(Condition::Id(w))
            }
            Some(Tok::Close) => self.fail("a `)` without its `(`"),
            None => self.fail("ends where a search identifier was expected"),
        }
    }
}

/// `count(field) by group > 10`, the text after the condition's `|`.
fn parse_aggregation(s: &str) -> Result<Aggregation, ParseError> {
    let bad = || ParseError(format!("aggregation {:?}: expected `count(field) by group > N`", s.trim()));
    let s = s.trim();
    let open = s.find('(').ok_or_else(bad)?;
    let close = s.find(')').ok_or_else(bad)?;
    let name = s[..open].trim().to_ascii_lowercase();
    let arg = s[open + 1..close].trim();
    let arg = (!arg.is_empty()).then(|| arg.to_string());
    let need = |a: Option<String>| a.ok_or_else(bad);
    let func = match name.as_str() {
        "count" => AggFunc::Count(arg),
        "sum" => AggFunc::Sum(need(arg)?),
        "min" => AggFunc::Min(need(arg)?),
        "max" => AggFunc::Max(need(arg)?),
        "avg" => AggFunc::Avg(need(arg)?),
        _ => return Err(bad()),
    };
    let rest = s[close + 1..].trim();
    let (by, rest) = match rest.strip_prefix("by ") {
        Some(r) => {
            let r = r.trim_start();
            let end = r.find(|c: char| c.is_whitespace() || "<>=".contains(c)).unwrap_or(r.len());
            (Some(r[..end].to_string()), r[end..].trim())
        }
        None => (None, rest),
    };
    let op_len = rest.chars().take_while(|c| "<>=".contains(*c)).count();
    let op = &rest[..op_len];
    if !["<", "<=", ">", ">=", "="].contains(&op) {
        return Err(bad());
    }
    let threshold: f64 = rest[op_len..].trim().parse().map_err(|_| bad())?;
    Ok(Aggregation { func, by, op: op.to_string(), threshold })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_with_precedence() {
        use Condition::*;
        let id = |s: &str| Id(s.to_string());
        assert_eq!(
            parse_condition("a or b and not c").unwrap(),
            Or(vec![id("a"), And(vec![id("b"), Not(Box::new(id("c")))])])
        );
        assert_eq!(
            parse_condition("1 of sel_* and not all of them").unwrap(),
            And(vec![OneOf("sel_*".into()), Not(Box::new(AllOf("*".into())))])
        );
        assert_eq!(
            parse_condition("(a or b) and c").unwrap(),
            And(vec![Or(vec![id("a"), id("b")]), id("c")])
        );
        assert!(parse_condition("a and (b").unwrap_err().0.contains("without its `)`"));
        assert!(parse_condition("a and").is_err());
    }

    #[test]
    fn aggregations_parse() {
        let a = parse_aggregation(" count(dst_ip) by src_ip > 10").unwrap();
        assert_eq!(a.func, AggFunc::Count(Some("dst_ip".into())));
        assert_eq!((a.by.as_deref(), a.op.as_str(), a.threshold), (Some("src_ip"), ">", 10.0));
        let a = parse_aggregation("count() > 5").unwrap();
        assert_eq!((a.func, a.by), (AggFunc::Count(None), None));
        assert!(parse_aggregation("near x").is_err());
    }

    #[test]
    fn searches_of_every_shape() {
        let r = Rule::parse(
            "title: t\nlogsource:\n  category: proxy\ndetection:\n  sel:\n    - a: 1\n    - b|contains: [x, 2]\n  \
             falsepositives:\n    - kw\n  k:\n    '|all': [p, q]\n  condition: sel and not falsepositives\n",
        )
        .unwrap();
        assert_eq!(r.searches.len(), 3);
        assert_eq!(r.searches[0].1.alternatives.len(), 2);
        assert_eq!(
            r.searches[0].1.alternatives[1][0],
            Item {
                field: Some("b".into()),
                modifiers: vec!["contains".into()],
                values: vec![Value::Str("x".into()), Value::Int(2)]
            }
        );
        assert_eq!(r.searches[1].1.alternatives[0][0].field, None);
        assert_eq!(r.searches[2].1.alternatives[0][0].modifiers, ["all"]);
    }
}
