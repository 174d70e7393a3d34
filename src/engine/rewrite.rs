//! Long `OR` and `AND` chains reshaped before planning, without changing what they mean.
//!
//! The parser builds `a OR b OR c ...` as a left-deep tree, and DataFusion's planner works
//! through it in time that grows with the square of its depth (3,000 terms: about a minute in a
//! debug build). Indicator sweeps and Sigma rules write exactly such chains. A chain of more
//! than [`REWRITE_FROM`] terms is rebuilt as a balanced tree of the same terms in the same order
//! (both operators are associative, NULLs included), and in an `OR` chain every `column =
//! literal` (and `column IN (literals)`) over the same column and kind of literal becomes one
//! `IN` list, which plans and runs as a set. Shorter chains are planned as written.
//!
//! And `x IN (SELECT y ...)` reads its subquery `DISTINCT`: DataFusion joins the subquery's rows
//! as they are, so a probe row walks every duplicate of its key (beaconing's 12 K candidate hosts
//! are 300 domains: 113 s against 5 M rows, under 1 s with the duplicates gone). Membership is the
//! same with or without them, NULLs included.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::parser::Statement;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Distinct, Expr, Query, SetExpr, Value, VisitMut, VisitorMut,
};

/// Chains of more terms than this are reshaped.
pub const REWRITE_FROM: usize = 32;

/// Reshapes every long `OR`/`AND` chain of a parsed statement, and makes `IN` subqueries distinct.
pub fn reshape(statement: &mut Statement) {
    match statement {
        Statement::Statement(s) => {
            let _ = s.visit(&mut Chains);
        }
        Statement::Explain(e) => reshape(&mut e.statement),
        Statement::CreateExternalTable(_) | Statement::CopyTo(_) | Statement::Reset(_) => {}
    }
}

struct Chains;

impl VisitorMut for Chains {
    type Break = ();

    // Before the children: the whole chain is taken apart from its top, iteratively, and what
    // the visitor then walks is the balanced tree, a few dozen levels deep at most.
    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::InSubquery { subquery, .. } = expr {
            distinct_values(subquery);
        }
        let Some(op) = chain_op(expr) else { return ControlFlow::Continue(()) };
        if chain_len(expr, &op) <= REWRITE_FROM {
            return ControlFlow::Continue(());
        }
        let whole = std::mem::replace(expr, Expr::value(Value::Null));
        let mut terms = take_chain(whole, &op);
        if op == BinaryOperator::Or {
            terms = group_equalities(terms);
        }
        *expr = balanced(terms, op);
        ControlFlow::Continue(())
    }
}

/// Makes an `IN` subquery give each value once. A plain column is made `DISTINCT` where it is;
/// an expression is computed `DISTINCT` in a derived table and read from it as a column, since
/// DataFusion 55 cannot decorrelate `expr IN (SELECT DISTINCT f(x) ...)` under an `OR`. A
/// subquery with `ORDER BY`, `LIMIT` or `FETCH` (which pick rows before the distinct would) or
/// more than one item is left alone.
fn distinct_values(subquery: &mut Box<Query>) {
    use datafusion::sql::sqlparser::ast::{Ident, SelectItem};
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    if subquery.order_by.is_some() || subquery.limit_clause.is_some() || subquery.fetch.is_some() {
        return;
    }
    let SetExpr::Select(select) = subquery.body.as_mut() else { return };
    if select.distinct.is_some() {
        return;
    }
    let [item] = select.projection.as_mut_slice() else { return };
    let value = match item {
        SelectItem::UnnamedExpr(Expr::Identifier(_) | Expr::CompoundIdentifier(_)) => {
            select.distinct = Some(Distinct::Distinct);
            return;
        }
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
        _ => return,
    };
    select.distinct = Some(Distinct::Distinct);
    *item = SelectItem::ExprWithAlias { expr: value, alias: Ident::new("__trawl_in") };
    let wrapped = format!("SELECT __trawl_in FROM ({subquery}) AS __trawl_in_set");
    if let Ok(query) =
        Parser::new(&GenericDialect {}).try_with_sql(&wrapped).and_then(|mut p| p.parse_query())
    {
        *subquery = query;
    }
}

fn chain_op(expr: &Expr) -> Option<BinaryOperator> {
    match expr {
        Expr::BinaryOp { op: op @ (BinaryOperator::Or | BinaryOperator::And), .. } => Some(op.clone()),
        _ => None,
    }
}

/// `e` itself when it is a chain link of `op`, or the link inside parentheses.
fn link<'a>(e: &'a Expr, op: &BinaryOperator) -> Option<(&'a Expr, &'a Expr)> {
    match e {
        Expr::BinaryOp { left, op: o, right } if o == op => Some((left, right)),
        Expr::Nested(inner) => link(inner, op),
        _ => None,
    }
}

/// Terms of the chain of `op` at `expr`, counted without recursion.
fn chain_len(expr: &Expr, op: &BinaryOperator) -> usize {
    let (mut n, mut stack) = (0, vec![expr]);
    while let Some(e) = stack.pop() {
        match link(e, op) {
            Some((l, r)) => stack.extend([r, l]),
            None => n += 1,
        }
    }
    n
}

/// The chain's terms, left to right, taken apart without recursion (dropping a deep tree
/// recursively is what a small stack cannot do).
fn take_chain(expr: Expr, op: &BinaryOperator) -> Vec<Expr> {
    let (mut terms, mut stack) = (Vec::new(), vec![expr]);
    while let Some(e) = stack.pop() {
        match e {
            Expr::BinaryOp { left, op: o, right } if o == *op => {
                stack.push(*right);
                stack.push(*left);
            }
            Expr::Nested(inner) if link(&inner, op).is_some() => stack.push(*inner),
            other => terms.push(other),
        }
    }
    terms
}

/// The terms joined by `op` pairwise, level by level: the same order, depth log2 of their number.
fn balanced(mut terms: Vec<Expr>, op: BinaryOperator) -> Expr {
    while terms.len() > 1 {
        let mut next = Vec::with_capacity(terms.len().div_ceil(2));
        let mut it = terms.into_iter();
        while let Some(a) = it.next() {
            next.push(match it.next() {
                Some(b) => Expr::BinaryOp { left: Box::new(a), op: op.clone(), right: Box::new(b) },
                None => a,
            });
        }
        terms = next;
    }
    terms.pop().expect("a chain has terms")
}

/// `col = lit` and `col IN (lits)` terms of one column and kind of literal, merged into one
/// `IN` list where the first of them stood; other terms stay as they are.
fn group_equalities(terms: Vec<Expr>) -> Vec<Expr> {
    let mut out: Vec<Expr> = Vec::with_capacity(terms.len());
    let mut lists: HashMap<(String, bool), usize> = HashMap::new();
    for t in terms {
        match membership(t) {
            Term::OneOf { column, text, values } => {
                let key = (column.to_string(), text);
                match lists.get(&key) {
                    Some(&i) => {
                        if let Expr::InList { list, .. } = &mut out[i] {
                            list.extend(values);
                        }
                    }
                    None => {
                        lists.insert(key, out.len());
                        out.push(Expr::InList { expr: Box::new(column), list: values, negated: false });
                    }
                }
            }
            Term::Other(t) => out.push(t),
        }
    }
    out
}

/// A term of an `OR` chain, as [`group_equalities`] sees it.
enum Term {
    /// "This column is one of these literals", strings (`text`) or numbers.
    OneOf {
        column: Expr,
        text: bool,
        values: Vec<Expr>,
    },
    Other(Expr),
}

fn membership(t: Expr) -> Term {
    let column = |e: &Expr| matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
    match t {
        Expr::BinaryOp { left, op: BinaryOperator::Eq, right } => match (literal(&left), literal(&right)) {
            (None, Some(text)) if column(&left) => Term::OneOf { column: *left, text, values: vec![*right] },
            (Some(text), None) if column(&right) => Term::OneOf { column: *right, text, values: vec![*left] },
            _ => Term::Other(Expr::BinaryOp { left, op: BinaryOperator::Eq, right }),
        },
        Expr::InList { expr, list, negated: false } if column(&expr) && !list.is_empty() => {
            let kinds: Vec<Option<bool>> = list.iter().map(literal).collect();
            match kinds[0] {
                Some(text) if kinds.iter().all(|k| *k == Some(text)) => {
                    Term::OneOf { column: *expr, text, values: list }
                }
                _ => Term::Other(Expr::InList { expr, list, negated: false }),
            }
        }
        other => Term::Other(other),
    }
}

/// Whether `e` is a string literal (`Some(true)`) or a number (`Some(false)`).
fn literal(e: &Expr) -> Option<bool> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(_) => Some(true),
            Value::Number(..) => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    fn reshaped(sql: &str) -> String {
        let mut statements = DFParser::parse_sql(sql).unwrap();
        let mut s = statements.pop_front().unwrap();
        reshape(&mut s);
        s.to_string()
    }

    #[test]
    fn equalities_over_one_column_become_one_in_list_and_the_rest_a_balanced_tree() {
        let mut terms: Vec<String> = (0..40).map(|i| format!("host = 'h{i}'")).collect();
        terms.insert(1, "url LIKE '%x%'".into());
        terms.insert(3, "3 = port".into());
        terms.push("host IN ('a', 'b')".into());
        terms.push("port = 8080".into());
        let sql = format!("SELECT * FROM proxy WHERE {}", terms.join(" OR "));
        let hosts: Vec<String> =
            (0..40).map(|i| format!("'h{i}'")).chain(["'a'".into(), "'b'".into()]).collect();
        assert_eq!(
            reshaped(&sql),
            format!(
                "SELECT * FROM proxy WHERE host IN ({}) OR url LIKE '%x%' OR port IN (3, 8080)",
                hosts.join(", ")
            )
        );
    }

    #[test]
    fn in_subqueries_read_distinct_values() {
        assert_eq!(
            reshaped("SELECT * FROM t WHERE a IN (SELECT b FROM u) AND c NOT IN (SELECT DISTINCT d FROM v)"),
            "SELECT * FROM t WHERE a IN (SELECT DISTINCT b FROM u) AND c NOT IN (SELECT DISTINCT d FROM v)"
        );
        assert_eq!(
            reshaped("SELECT 1 WHERE h = 'x' OR h IN (SELECT lower(e) FROM j)"),
            "SELECT 1 WHERE h = 'x' OR h IN (SELECT __trawl_in FROM (SELECT DISTINCT lower(e) AS __trawl_in FROM j) AS __trawl_in_set)"
        );
        assert_eq!(
            reshaped("SELECT 1 WHERE a IN (SELECT b FROM u LIMIT 3)"),
            "SELECT 1 WHERE a IN (SELECT b FROM u LIMIT 3)"
        );
        // A set operation is left as written.
        assert_eq!(
            reshaped("SELECT 1 WHERE a IN (SELECT b FROM u UNION ALL SELECT c FROM v)"),
            "SELECT 1 WHERE a IN (SELECT b FROM u UNION ALL SELECT c FROM v)"
        );
    }

    #[test]
    fn a_chain_that_cannot_be_grouped_keeps_its_terms_in_order_balanced() {
        let terms: Vec<String> = (0..REWRITE_FROM + 1).map(|i| format!("url LIKE '%{i}%'")).collect();
        let mut s = DFParser::parse_sql(&format!("SELECT 1 WHERE {}", terms.join(" OR "))).unwrap();
        let mut s = s.pop_front().unwrap();
        reshape(&mut s);
        let Statement::Statement(st) = &s else { panic!("a query") };
        let mut depth = 0;
        let _ = datafusion::sql::sqlparser::ast::visit_expressions(st.as_ref(), |e| {
            if let Expr::BinaryOp { left, .. } = e {
                let mut d = 1;
                let mut l = left.as_ref();
                while let Expr::BinaryOp { left, .. } = l {
                    (d, l) = (d + 1, left.as_ref());
                }
                depth = depth.max(d);
            }
            ControlFlow::<()>::Continue(())
        });
        assert_eq!(depth, 6, "33 terms: 6 levels, not 32");
        let text = s.to_string();
        let order: Vec<usize> = (0..=REWRITE_FROM).map(|i| text.find(&format!("'%{i}%'")).unwrap()).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
        // Short chains, AND chains' equalities and NOT IN are left as written.
        let short = "SELECT 1 WHERE a = 1 OR a = 2";
        assert_eq!(reshaped(short), short);
        let ands: Vec<String> = (0..40).map(|i| format!("a = {i}")).collect();
        let and = reshaped(&format!("SELECT 1 WHERE {}", ands.join(" AND ")));
        assert!(!and.contains(" IN ") && and.matches(" AND ").count() == 39, "{and}");
    }
}
