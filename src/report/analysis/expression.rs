//! `--fail-if` expressions of `dpsbench report compare`: `FIGURE OP THRESHOLD`, e.g.
//! `assigned.p99 > +10%`, `tls_handshake.p50 > 5ms`, `failed > 0`, `flows_per_second < -5%`.
//!
//! Every threshold is a change from the baseline, so a run compared with itself trips nothing:
//! a percentage is the relative change, a number or a duration (us, ms, s; latencies only, which
//! need one) the absolute change (`failed > 0`: more failures than the baseline). Pure: no IO.

use super::comparison::{Comparison, Unit, figure_names, unit_of};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Above,
    AtLeast,
    Below,
    AtMost,
}

/// What the figure is compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// The change from baseline to current, in percent (signed).
    Change(f64),
    /// The absolute change from baseline to current, in the figure's unit (microseconds for
    /// latencies).
    Delta(f64),
    /// The change in standard deviations of several baseline runs (`+2sd`): beyond the noise.
    Deviations(f64),
}

/// A parsed `--fail-if` expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    pub text: String,
    pub figure: String,
    pub op: Op,
    pub threshold: Threshold,
}

/// An expression that does not parse. Each variant quotes it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExpressionError {
    #[error("--fail-if {0:?}: expected FIGURE OP THRESHOLD with OP one of > >= < <=, e.g. `assigned.p99 > +10%`")]
    Shape(String),
    #[error("--fail-if {text:?}: unknown figure {figure:?}; the figures are {names}", names = figure_names())]
    Figure { text: String, figure: String },
    #[error(
        "--fail-if {text:?}: {kind:?} is no failure kind, so failures.{kind} could never trip (stopped devices are the \
         figure `aborted`; a 2xx reply or CONNACK 0 is no failure); the kinds are {forms}",
        forms = crate::device::FailureKind::label_forms()
    )]
    FailureKind { text: String, kind: String },
    #[error(
        "--fail-if {text:?}: {id:?} is no passive conformance check, so violations.{id} could never trip; the checks \
         are {ids}",
        ids = passive_check_ids().join(", ")
    )]
    Check { text: String, id: String },
    #[error(
        "--fail-if {text:?}: {threshold:?} is not a percentage (+10%), a number (3), a duration (250us, 5ms, 2s) or \
         standard deviations of several baseline runs (+2sd)"
    )]
    Threshold { text: String, threshold: String },
    #[error("--fail-if {text:?}: {figure} is a latency: give a unit (us, ms, s) or a percentage")]
    NeedsUnit { text: String, figure: String },
    #[error("--fail-if {text:?}: {figure} is not a latency, so it takes no duration")]
    NotALatency { text: String, figure: String },
}

/// The IDs of the catalogue's passive checks: those a run's `conformance` counts violations of.
fn passive_check_ids() -> Vec<&'static str> {
    crate::conformance::CATALOGUE.iter().filter(|c| c.passive.is_some()).map(|c| c.id).collect()
}

/// How one expression fared on a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub expression: String,
    pub tripped: bool,
    /// What was compared, e.g. `assigned.p99 1.01s -> 1.21s (+20.0%)`.
    pub observed: String,
}

impl Expression {
    /// Whether it needs several baseline runs (a threshold in standard deviations).
    pub fn needs_spread(&self) -> bool {
        matches!(self.threshold, Threshold::Deviations(_))
    }

    pub fn parse(text: &str) -> Result<Self, ExpressionError> {
        let shape = || ExpressionError::Shape(text.to_string());
        let at = text.find(['<', '>']).ok_or_else(shape)?;
        let (figure, rest) = (text[..at].trim(), &text[at..]);
        let (op, threshold) = match rest.as_bytes() {
            [b'>', b'=', ..] => (Op::AtLeast, &rest[2..]),
            [b'<', b'=', ..] => (Op::AtMost, &rest[2..]),
            [b'>', ..] => (Op::Above, &rest[1..]),
            _ => (Op::Below, &rest[1..]),
        };
        let threshold = threshold.trim();
        if figure.is_empty() || figure.contains(char::is_whitespace) || threshold.is_empty() {
            return Err(shape());
        }
        if let Some(kind) = figure.strip_prefix("failures.") {
            use crate::device::FailureKind;
            match FailureKind::from_label(kind) {
                // Counted apart (the figure `aborted`), or no failure at all: never in `failures`.
                Some(FailureKind::Aborted | FailureKind::Refused(0)) => {}
                Some(FailureKind::Status(status)) if (200..300).contains(&status) => {}
                Some(_) => return Self::parsed(text, figure, op, threshold),
                None => {}
            }
            return Err(ExpressionError::FailureKind { text: text.to_string(), kind: kind.to_string() });
        }
        if let Some(id) = figure.strip_prefix("violations.") {
            if !passive_check_ids().contains(&id) {
                return Err(ExpressionError::Check { text: text.to_string(), id: id.to_string() });
            }
        }
        Self::parsed(text, figure, op, threshold)
    }

    /// The expression of a known-good figure name, its threshold parsed for its unit.
    fn parsed(text: &str, figure: &str, op: Op, threshold: &str) -> Result<Self, ExpressionError> {
        let unit = unit_of(figure)
            .ok_or_else(|| ExpressionError::Figure { text: text.to_string(), figure: figure.to_string() })?;
        let threshold = parse_threshold(text, figure, unit, threshold)?;
        Ok(Self { text: text.to_string(), figure: figure.to_string(), op, threshold })
    }

    /// Evaluates the expression on `comparison`. A figure neither run has (a phase neither
    /// measured) trips nothing; a latency the baseline measured and the current run has no
    /// sample of trips whatever the threshold: a gate on nothing is no improvement.
    pub fn evaluate(&self, comparison: &Comparison) -> Verdict {
        let Some(figure) = comparison.get(&self.figure) else {
            let observed = format!("{} was measured by neither run", self.figure);
            return Verdict { expression: self.text.clone(), tripped: false, observed };
        };
        if comparison.unmeasured_now(&self.figure) {
            let why = match self.figure.split_once('.') {
                _ if comparison.current_empty => "the current run started no device".to_string(),
                Some((phase, _)) => format!("the current run measured no {phase}"),
                None => format!("the current run measured no {}", self.figure),
            };
            let observed = format!(
                "{} {} -> no samples: {why}, so this gate cannot hold",
                figure.name,
                figure.format(figure.baseline)
            );
            return Verdict { expression: self.text.clone(), tripped: true, observed };
        }
        let (value, limit) = match self.threshold {
            Threshold::Change(percent) => (figure.change_percent(), percent),
            Threshold::Delta(delta) => (figure.current - figure.baseline, delta),
            Threshold::Deviations(deviations) => match figure.change_sd() {
                Some(change) => (change, deviations),
                None => {
                    let observed = format!("{} needs two or more baseline runs to have a spread", self.figure);
                    return Verdict { expression: self.text.clone(), tripped: false, observed };
                }
            },
        };
        let tripped = match self.op {
            Op::Above => value > limit,
            Op::AtLeast => value >= limit,
            Op::Below => value < limit,
            Op::AtMost => value <= limit,
        };
        let spread = match (figure.spread, figure.change_sd()) {
            (Some(spread), Some(sd)) => {
                format!(", {sd:+.1} sd of {} baseline runs (sd {})", spread.runs, figure.format(spread.sd))
            }
            _ => String::new(),
        };
        let observed = format!(
            "{} {} -> {} ({}{spread})",
            figure.name,
            figure.format(figure.baseline),
            figure.format(figure.current),
            figure.change()
        );
        Verdict { expression: self.text.clone(), tripped, observed }
    }
}

fn parse_threshold(text: &str, figure: &str, unit: Unit, threshold: &str) -> Result<Threshold, ExpressionError> {
    let bad = || ExpressionError::Threshold { text: text.to_string(), threshold: threshold.to_string() };
    let number = |s: &str| s.trim().parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(bad);
    if let Some(percent) = threshold.strip_suffix('%') {
        return Ok(Threshold::Change(number(percent)?));
    }
    if let Some(deviations) = threshold.strip_suffix("sd").or_else(|| threshold.strip_suffix('σ')) {
        return Ok(Threshold::Deviations(number(deviations)?));
    }
    let duration = [("us", 1.0), ("ms", 1_000.0), ("s", 1_000_000.0)]
        .into_iter()
        .find_map(|(suffix, scale)| threshold.strip_suffix(suffix).map(|n| (n, scale)));
    match (duration, unit) {
        (Some((n, scale)), Unit::Micros) => Ok(Threshold::Delta(number(n)? * scale)),
        (Some(_), _) => {
            number(threshold.trim_end_matches(char::is_alphabetic))?;
            Err(ExpressionError::NotALatency { text: text.to_string(), figure: figure.to_string() })
        }
        (None, Unit::Micros) => {
            number(threshold)?;
            Err(ExpressionError::NeedsUnit { text: text.to_string(), figure: figure.to_string() })
        }
        (None, _) => Ok(Threshold::Delta(number(threshold)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Expression {
        Expression::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn each_form_parses() {
        let e = parse("assigned.p99 > +10%");
        assert_eq!((e.figure.as_str(), e.op, e.threshold), ("assigned.p99", Op::Above, Threshold::Change(10.0)));
        let e = parse("tls_handshake.p50 > 5ms");
        assert_eq!((e.figure.as_str(), e.threshold), ("tls_handshake.p50", Threshold::Delta(5_000.0)));
        assert_eq!(parse("connack.p99.9>=250us").threshold, Threshold::Delta(250.0));
        assert_eq!(parse("end_to_end.max <= 2s").op, Op::AtMost);
        assert_eq!(parse("end_to_end.max <= 1.5s").threshold, Threshold::Delta(1_500_000.0));
        let e = parse("failed > 0");
        assert_eq!((e.figure.as_str(), e.op, e.threshold), ("failed", Op::Above, Threshold::Delta(0.0)));
        let e = parse("flows_per_second < -5%");
        assert_eq!((e.op, e.threshold), (Op::Below, Threshold::Change(-5.0)));
        assert_eq!(parse("failures.timeout_poll >= 1").figure, "failures.timeout_poll");
    }

    #[test]
    fn bad_input_is_refused_quoting_the_expression() {
        type Case = (&'static str, fn(&ExpressionError) -> bool);
        let cases: [Case; 15] = [
            ("failures.aborted > 0", |e| matches!(e, ExpressionError::FailureKind { .. })),
            ("failures.status_202 > 0", |e| matches!(e, ExpressionError::FailureKind { .. })),
            ("failures.refused_0 > 0", |e| matches!(e, ExpressionError::FailureKind { .. })),
            ("failures.status429 > 0", |e| matches!(e, ExpressionError::FailureKind { .. })),
            ("failures.timeout_nap >= 1", |e| matches!(e, ExpressionError::FailureKind { .. })),
            ("violations.DPS-NOPE-999 > 0", |e| matches!(e, ExpressionError::Check { .. })),
            ("assigned.p99", |e| matches!(e, ExpressionError::Shape(_))),
            ("> 3", |e| matches!(e, ExpressionError::Shape(_))),
            ("failed >", |e| matches!(e, ExpressionError::Shape(_))),
            ("tls.p99 > 5ms", |e| matches!(e, ExpressionError::Figure { .. })),
            ("assigned.p98 > 5ms", |e| matches!(e, ExpressionError::Figure { .. })),
            ("failed > lots", |e| matches!(e, ExpressionError::Threshold { .. })),
            ("assigned.p99 > 10", |e| matches!(e, ExpressionError::NeedsUnit { .. })),
            ("failed > 5ms", |e| matches!(e, ExpressionError::NotALatency { .. })),
            ("assigned.p99 > 5 parsecs", |e| matches!(e, ExpressionError::Threshold { .. })),
        ];
        for (text, expected) in cases {
            let error = Expression::parse(text).unwrap_err();
            assert!(expected(&error), "{text}: {error:?}");
            assert!(error.to_string().starts_with(&format!("--fail-if {text:?}")), "{error}");
        }
        let unknown = Expression::parse("tls.p99 > 5ms").unwrap_err().to_string();
        assert!(unknown.contains("tls_handshake"), "the error lists the phases: {unknown}");
        let kind = Expression::parse("failures.status429 > 0").unwrap_err().to_string();
        assert!(
            kind.contains("status_<HTTP status, not 2xx>") && kind.contains("timeout_<"),
            "lists the kinds: {kind}"
        );
        let check = Expression::parse("violations.DPS-NOPE-999 > 0").unwrap_err().to_string();
        let passive = passive_check_ids();
        assert!(!passive.is_empty() && passive.iter().all(|id| check.contains(id)), "lists the checks: {check}");
        // Names from the catalogues parse whether or not a run had them.
        for id in passive {
            assert_eq!(parse(&format!("violations.{id} > 0")).figure, format!("violations.{id}"));
        }
        assert_eq!(parse("failures.status_503 > 0").figure, "failures.status_503");
    }

    #[test]
    fn comparing_a_run_with_itself_trips_nothing() {
        let summary: crate::results::RunSummary =
            serde_json::from_value(crate::report::tests::summary()).expect("the test summary matches RunSummary");
        let comparison = Comparison::of(&summary, &summary);
        for text in ["assigned.p99 > +10%", "tls_handshake.p50 > 5ms", "failed > 0", "flows_per_second < -5%"] {
            let verdict = parse(text).evaluate(&comparison);
            assert!(!verdict.tripped, "{text}: {verdict:?}");
        }
    }

    #[test]
    fn each_form_trips_on_its_regression() {
        let summary = |edit: fn(&mut serde_json::Value)| -> crate::results::RunSummary {
            let mut value = crate::report::tests::summary();
            edit(&mut value);
            serde_json::from_value(value).expect("the test summary matches RunSummary")
        };
        let baseline = summary(|_| {});
        let current = summary(|s| {
            s["phases"]["assigned"]["p99_us"] = 1_113_300.into(); // +10.01%
            s["phases"]["tls_handshake"]["p50_us"] = 7_101.into(); // +5.001 ms
            s["devices"]["failed"] = 1.into();
            s["flows_per_second"] = 94.5.into(); // -5.1%
        });
        let comparison = Comparison::of(&baseline, &current);
        for text in ["assigned.p99 > +10%", "tls_handshake.p50 > 5ms", "failed > 0", "flows_per_second < -5%"] {
            assert!(parse(text).evaluate(&comparison).tripped, "{text}");
        }
        for text in ["assigned.p99 > +11%", "tls_handshake.p50 > 6ms", "failed > 1", "flows_per_second < -6%"] {
            assert!(!parse(text).evaluate(&comparison).tripped, "{text}");
        }
        let verdict = parse("failed > 0").evaluate(&comparison);
        assert_eq!(verdict.observed, "failed 0 -> 1 (+1 (new))");
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,40}", figure in "[a-z_.0-9]{1,20}", threshold in "[-+0-9.%a-z ]{0,8}") {
            let _ = Expression::parse(&text);
            for op in [">", ">=", "<", "<="] {
                let _ = Expression::parse(&format!("{figure} {op} {threshold}"));
            }
        }
    }
}
