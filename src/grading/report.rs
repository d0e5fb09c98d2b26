//! The one check-report model both catalogues share: a check as its catalogue states it
//! ([`StatedCheck`], the head of every result in conformance.json and clients.json alike), and the
//! report of graded rows they both render as JUnit, written by quick-junit, which escapes the
//! text and drops what XML cannot hold. Each catalogue adds its own evidence to a result and
//! builds its rows (its messages, its classnames); this writes them all alike. Pure.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};
use serde::{Deserialize, Serialize};

use super::{Grade, Level};

/// A report of graded checks: one JUnit test suite.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// The report's name (`<testsuites name>`).
    pub name: String,
    /// The suite's name (`<testsuite name>`).
    pub suite: String,
    /// When the checks began, RFC 3339 text as the catalogue's own report has it.
    pub timestamp: Option<String>,
    pub seconds: Option<f64>,
    /// Named values about what was checked (the target, the connections judged).
    pub properties: Vec<(&'static str, String)>,
    pub rows: Vec<CheckRow>,
}

/// A check as its catalogue states it. Each catalogue's result flattens it into its JSON, so
/// `id`, `title`, `statement` and `level` read the same in every report of checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatedCheck {
    pub id: String,
    pub title: String,
    /// What the check holds the target or the client to, in one sentence.
    pub statement: String,
    pub level: Level,
}

/// One check, graded.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRow {
    pub check: StatedCheck,
    /// Where CI tools group it: `dpsbench.<catalogue>.<…>`.
    pub classname: String,
    pub grade: Grade,
    /// One line: what failed, what blocked the check, or why it was skipped; none for a pass.
    pub message: String,
    /// The evidence in full: the text of a failure or of an inconclusive check, the output of a
    /// pass; empty when there is none.
    pub detail: String,
    pub seconds: Option<f64>,
}

impl CheckReport {
    /// JUnit XML: one test case per row, named `{id} {title}`. A failure's type is its level; an
    /// inconclusive check is an `<error>` of type `inconclusive` (it could not run, which is not
    /// a failure of it); a skipped one is `<skipped>` with its reason; a pass carries its
    /// evidence as `<system-out>`.
    pub fn junit(&self) -> String {
        let mut suite = TestSuite::new(self.suite.as_str());
        if let Some(seconds) = self.seconds {
            suite.set_time(Duration::from_secs_f64(seconds));
        }
        if let Some(timestamp) = &self.timestamp {
            // The text as the catalogue's report has it, to the digit (quick-junit's own
            // timestamp is a chrono value cut to milliseconds).
            suite.extra.insert("timestamp".into(), timestamp.as_str().into());
        }
        suite.add_properties(self.properties.iter().map(|(name, value)| Property::new(*name, value.as_str())));
        suite.add_test_cases(self.rows.iter().map(CheckRow::test_case));
        let mut report = Report::new(self.name.as_str());
        if let Some(seconds) = self.seconds {
            report.set_time(Duration::from_secs_f64(seconds));
        }
        report.add_test_suite(suite);
        report.to_string().expect("a report of plain strings always serialises to memory")
    }
}

impl CheckRow {
    fn test_case(&self) -> TestCase {
        let status = match self.grade {
            Grade::Pass => TestCaseStatus::success(),
            Grade::Fail => self.non_success(NonSuccessKind::Failure, self.check.level.name()),
            Grade::Inconclusive => self.non_success(NonSuccessKind::Error, "inconclusive"),
            Grade::Skipped => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(self.message.as_str());
                status
            }
        };
        let mut case = TestCase::new(format!("{} {}", self.check.id, self.check.title), status);
        case.set_classname(self.classname.as_str());
        if let Some(seconds) = self.seconds {
            case.set_time(Duration::from_secs_f64(seconds));
        }
        if self.grade == Grade::Pass && !self.detail.is_empty() {
            case.set_system_out(self.detail.as_str());
        }
        case
    }

    fn non_success(&self, kind: NonSuccessKind, type_name: &str) -> TestCaseStatus {
        let mut status = TestCaseStatus::non_success(kind);
        status.set_message(self.message.as_str()).set_type(type_name);
        if !self.detail.is_empty() {
            status.set_description(self.detail.as_str());
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use quick_junit::TestCaseStatus;

    use super::*;

    fn row(id: &str, level: Level, grade: Grade, message: &str, detail: &str) -> CheckRow {
        CheckRow {
            check: StatedCheck {
                id: id.into(),
                title: "A <title> & \"more\"".into(),
                statement: "holds".into(),
                level,
            },
            classname: "dpsbench.unit".into(),
            grade,
            message: message.into(),
            detail: detail.into(),
            seconds: Some(0.25),
        }
    }

    fn report() -> CheckReport {
        CheckReport {
            name: "dpsbench unit".into(),
            suite: "dpsbench unit suite".into(),
            timestamp: Some("2026-11-26T07:00:00.0000000Z".into()),
            seconds: Some(1.5),
            properties: vec![("target", "127.0.0.1:8883".into())],
            rows: vec![
                row("U-001", Level::Must, Grade::Pass, "", "closed"),
                row("U-002", Level::Should, Grade::Fail, "should: <x> & y", "seen <x>\nline two\u{7}"),
                row("U-003", Level::Must, Grade::Inconclusive, "must: inconclusive, blocked by lifecycle", "why"),
                row("U-004", Level::Must, Grade::Skipped, "waived: the lab's", ""),
            ],
        }
    }

    /// What a JUnit reader sees: quick-junit's own parser reads back each grade, its type,
    /// message and text, the counts, and the timestamp to the digit.
    #[test]
    fn the_junit_reads_back_grade_by_grade() {
        let xml = report().junit();
        let read = quick_junit::Report::deserialize_from_str(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        assert_eq!((read.tests, read.failures, read.errors, read.skipped), (4, 1, 1, 1), "{xml}");
        let suite = &read.test_suites[0];
        assert_eq!(suite.name.as_str(), "dpsbench unit suite");
        assert!(suite.timestamp.is_some() && xml.contains(" timestamp=\"2026-11-26T07:00:00.0000000Z\""), "{xml}");
        assert_eq!(suite.properties[0].value.as_str(), "127.0.0.1:8883");
        let cases = &suite.test_cases;
        assert_eq!(cases[0].name.as_str(), "U-001 A <title> & \"more\"");
        assert_eq!(cases[0].system_out.as_ref().map(|o| o.as_str()), Some("closed"));
        let TestCaseStatus::NonSuccess { kind, message, ty, description, .. } = &cases[1].status else {
            panic!("{xml}")
        };
        assert_eq!(*kind, NonSuccessKind::Failure);
        assert_eq!((message.as_deref(), ty.as_deref()), (Some("should: <x> & y"), Some("should")));
        assert_eq!(
            description.as_deref(),
            Some("seen <x>\nline two"),
            "a control character XML cannot hold is dropped"
        );
        let TestCaseStatus::NonSuccess { kind, ty, .. } = &cases[2].status else { panic!("{xml}") };
        assert_eq!((*kind, ty.as_deref()), (NonSuccessKind::Error, Some("inconclusive")));
        let TestCaseStatus::Skipped { message, .. } = &cases[3].status else { panic!("{xml}") };
        assert_eq!(message.as_deref(), Some("waived: the lab's"));
    }
}
