//! Scenario files built for tests instead of spelled out as TOML strings: a target, then the
//! fields a test cares about, emitted as TOML the scenario loader reads. It knows the sections'
//! names, not what their fields mean: what is valid is the loader's to say (a test that feeds
//! bad TOML on purpose keeps its literal).

use std::path::{Path, PathBuf};

use toml::{Table, Value};

/// A scenario file under construction; [`Scenario::to_toml`] or [`Scenario::write`] ends it.
#[derive(Clone, Debug)]
pub struct Scenario {
    root: Table,
}

impl Scenario {
    /// A scenario `name` against the embedded emulator (`kind = "embedded"`).
    pub fn embedded(name: &str) -> Self {
        Self::named(name).target("kind", "embedded")
    }

    /// A scenario `name` against a DPS target (`kind = "dps"`) at `host`, ID scope `id_scope`.
    pub fn dps(name: &str, host: &str, id_scope: &str) -> Self {
        Self::named(name).target("kind", "dps").target("host", host).target("id_scope", id_scope)
    }

    /// A scenario `name` against an emulator on this machine: `127.0.0.1:port`, trusted through
    /// the CA file `ca` (relative to the scenario file), its certificate issued to `localhost`.
    pub fn loopback(name: &str, port: u16, id_scope: &str, ca: &str) -> Self {
        Self::dps(name, "127.0.0.1", id_scope)
            .target("port", i64::from(port))
            .target("ca_certificate", ca)
            .target("server_name", "localhost")
    }

    /// One device against a closed port on this machine (a DPS target that never answers),
    /// trusting the CA file `ca`, its key read from `BENCH_KEY`.
    pub fn unreachable(closed_port: u16, ca: &str) -> Self {
        Self::dps("u", "127.0.0.1", "0ne00TEST01")
            .target("port", i64::from(closed_port))
            .target("ca_certificate", ca)
            .devices(1)
            .device("group_key_env", "BENCH_KEY")
            .rate(1.0)
    }

    /// A plan no generator can keep: 20 devices offered at 1,000/s through one in-flight slot,
    /// each taking 20 ms or more, so starts fall hundreds of milliseconds behind (an invalid run).
    pub fn cannot_keep_its_plan() -> Self {
        Self::embedded("invalid")
            .target("retry_after_seconds", 0)
            .target("assign_delay_ms", 20)
            .devices(20)
            .rate(1000.0)
            .run("max_in_flight", 1)
    }

    /// Sets `field` of `[target]`; a dotted field (`faults.drop_reply`) sets a nested table.
    pub fn target(self, field: &str, value: impl Into<Value>) -> Self {
        self.set(&format!("target.{field}"), value)
    }

    /// `devices.count`.
    pub fn devices(self, count: u64) -> Self {
        self.device("count", i64::try_from(count).expect("a test's device count fits TOML's integers"))
    }

    /// Sets `field` of `[devices]`.
    pub fn device(self, field: &str, value: impl Into<Value>) -> Self {
        self.set(&format!("devices.{field}"), value)
    }

    /// `arrival.rate`, in devices a second (the constant model unless `model` says otherwise).
    pub fn rate(self, per_second: f64) -> Self {
        self.arrival("rate", per_second)
    }

    /// Sets `field` of `[arrival]`.
    pub fn arrival(self, field: &str, value: impl Into<Value>) -> Self {
        self.set(&format!("arrival.{field}"), value)
    }

    /// Sets `field` of `[flow]`.
    pub fn flow(self, field: &str, value: impl Into<Value>) -> Self {
        self.set(&format!("flow.{field}"), value)
    }

    /// Sets `field` of `[run]`.
    pub fn run(self, field: &str, value: impl Into<Value>) -> Self {
        self.set(&format!("run.{field}"), value)
    }

    /// Sets `field` of `[slo]`.
    pub fn slo(self, field: &str, value: impl Into<Value>) -> Self {
        self.set(&format!("slo.{field}"), value)
    }

    /// Sets the field at the dotted `path` (`target.faults.drop_reply`), making the tables on
    /// the way; a later value for the same path replaces the earlier one.
    pub fn set(mut self, path: &str, value: impl Into<Value>) -> Self {
        let mut names: Vec<&str> = path.split('.').collect();
        let field = names.pop().expect("split yields at least one name");
        let mut table = &mut self.root;
        for name in names {
            let entry = table.entry(name).or_insert_with(|| Value::Table(Table::new()));
            table = entry.as_table_mut().unwrap_or_else(|| panic!("{path}: `{name}` is a value, not a table"));
        }
        table.insert(field.to_string(), value.into());
        self
    }

    /// Removes the field at the dotted `path`, if set (a variant of a shared scenario that
    /// must not say it).
    pub fn remove(mut self, path: &str) -> Self {
        let (tables, field) = path.rsplit_once('.').unwrap_or(("", path));
        let mut table = Some(&mut self.root);
        for name in tables.split('.').filter(|name| !name.is_empty()) {
            table = table.and_then(|t| t.get_mut(name)).and_then(Value::as_table_mut);
        }
        if let Some(table) = table {
            table.remove(field);
        }
        self
    }

    /// The scenario file's text.
    pub fn to_toml(&self) -> String {
        toml::to_string(&self.root).expect("a table of TOML values serialises")
    }

    /// Writes the scenario to `dir/file`; returns its path.
    pub fn write(&self, dir: &Path, file: &str) -> PathBuf {
        super::binary::write(dir, file, &self.to_toml())
    }

    fn named(name: &str) -> Self {
        Self { root: Table::new() }.set("name", name)
    }
}

/// A TOML table value (an inline table in a scenario: `personalities`, `payload`, ...).
pub fn table<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Table(entries.into_iter().map(|(name, value)| (name.to_string(), value)).collect())
}

#[test]
fn a_built_scenario_is_the_toml_the_loader_reads() {
    let dir = super::binary::temp_dir("scenario-builder");
    let path = Scenario::embedded("built")
        .target("retry_after_seconds", 0)
        .target("faults.drop_reply", 0.5)
        .devices(12)
        .device("registration_id", "b-{index:02}")
        .rate(40.0)
        .run("max_duration_seconds", 60)
        .slo("phase_p99_ms", table([("tls_handshake", 60_000.into())]))
        .write(&dir, "built.toml");
    let plan = dpsbench::scenario::Plan::load(&path, &|_| None).unwrap();
    assert_eq!(plan.name, "built");
    let text = std::fs::read_to_string(&path).unwrap();
    for line in ["name = \"built\"", "[target]", "kind = \"embedded\"", "[target.faults]", "count = 12", "rate = 40.0"]
    {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    // A later value replaces an earlier one; a removed field is gone, its table kept.
    let text = Scenario::embedded("b").rate(1.0).rate(2.0).devices(3).remove("devices.count").to_toml();
    assert!(text.contains("rate = 2.0") && !text.contains("rate = 1.0"), "{text}");
    assert!(text.contains("[devices]") && !text.contains("count"), "{text}");
}
