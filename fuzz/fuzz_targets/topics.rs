//! Reply-topic, request-topic and username parsing: never panics, and what parses re-renders.
#![no_main]

use dpsbench::topics::{ReplyTopic, RequestTopic, Username, reply_topic};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(reply) = ReplyTopic::parse(text)
        && let Some(rid) = reply.rid
        && reply.retry_after != Some(None)
    {
        // A reply topic with a `$rid` (and a `retry-after` with a value, if any) renders and
        // parses back to the same status, `$rid` and `retry-after`.
        let retry_after = reply.retry_after.flatten();
        let rendered = reply_topic(reply.status, rid, retry_after);
        let again = ReplyTopic::parse(&rendered).expect("a rendered reply topic parses");
        assert_eq!((again.status, again.rid, again.retry_after), (reply.status, reply.rid, reply.retry_after));
    }
    let _ = RequestTopic::parse(text);
    if let Ok(username) = Username::parse(text) {
        let rendered = username.to_string();
        assert_eq!(Username::parse(&rendered).expect("a rendered username parses"), username);
    }
});
