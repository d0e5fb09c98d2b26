//! One CSV line in memory, as `timeseries.csv` and `devices.csv` write them. Pure.

/// `fields` as one CSV line, quoted where needed.
pub(super) fn line(fields: impl IntoIterator<Item = String>) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(fields).expect("writing CSV into memory cannot fail");
    writer.into_inner().expect("flushing CSV into memory cannot fail")
}
