use super::*;
use proptest::prelude::*;

fn scope() -> IdScope {
    IdScope::new("0ne00DPS001").unwrap()
}

fn regid(id: &str) -> RegistrationId {
    RegistrationId::new(id).unwrap()
}

#[test]
fn tv1_group_key_derivation() {
    let group = SymmetricKey::from_base64(
        "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
    )
    .unwrap();
    let device = group.derive_device_key(&regid("sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6"));
    assert_eq!(device.to_base64(), "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=");
}

#[test]
fn tv2_sas_token() {
    let key = SymmetricKey::from_base64("00mysymmetrickey").unwrap();
    let token = SasToken::build(
        &IdScope::new("myIdScope").unwrap(),
        &regid("mydeviceregistrationid"),
        &key,
        1630175722,
        SasStyle::default(),
    );
    assert_eq!(
        token.expose(),
        "SharedAccessSignature sr=myIdScope%2Fregistrations%2Fmydeviceregistrationid\
         &sig=SDpdbUNk%2F1DSjEpeb29BLVe6gRDZI7T41Y4BPsHHoUg%3D&se=1630175722&skn=registration"
    );
    assert_eq!(
        string_to_sign("myIdScope%2Fregistrations%2Fmydeviceregistrationid", "1630175722"),
        "myIdScope%2Fregistrations%2Fmydeviceregistrationid\n1630175722"
    );
}

#[test]
fn tv2_unencoded_resource_signs_differently() {
    // Signing the raw URI instead of the encoded one gives this signature.
    let key = SymmetricKey::from_base64("00mysymmetrickey").unwrap();
    let sig = key.sign(b"myIdScope/registrations/mydeviceregistrationid\n1630175722");
    assert_eq!(BASE64.encode(sig), "l6nCPQlqkWB046a6n2bBXzmeBzVE3rfYFvAMaLBzGDA=");
}

#[test]
fn tv3_hmac_primitive() {
    let key = SymmetricKey::from_base64("NMgJDvdKTxjLi+xBxxkDDEwDJxEvOE5u8BiT0mVgPeg=").unwrap();
    assert_eq!(BASE64.encode(key.sign(b"sign this message")), "8NJRMT83CcplGrAGaUVIUM/md5914KpWVNngSVoF9/M=");
}

#[test]
fn every_sdk_style_verifies() {
    let key = SymmetricKey::random();
    let id = regid("Dev-01");
    for resource_encoding in [ResourceEncoding::Upper, ResourceEncoding::Lower, ResourceEncoding::Raw] {
        for (key_name, skn_before_se) in [(false, false), (true, false), (true, true)] {
            let style = SasStyle { resource_encoding, key_name, skn_before_se, lower_case_sig: skn_before_se };
            let token = SasToken::build(&scope(), &id, &key, 2_000, style);
            let parsed = token.parse().unwrap();
            assert_eq!(parsed.verify(&scope(), &regid("dev-01"), 1_000, [&key]), Ok(()), "{style:?}");
        }
    }
}

#[test]
fn lower_case_resource_matches_c_sdk() {
    let token = SasToken::build(
        &IdScope::new("0neFEEDC0DE").unwrap(),
        &regid("myRegistrationId"),
        &SymmetricKey::random(),
        1578941692,
        SasStyle {
            resource_encoding: ResourceEncoding::Lower,
            key_name: false,
            skn_before_se: false,
            lower_case_sig: false,
        },
    );
    assert!(token.expose().starts_with("SharedAccessSignature sr=0neFEEDC0DE%2fregistrations%2fmyRegistrationId&sig="));
    assert!(token.expose().ends_with("&se=1578941692"));
}

#[test]
fn fields_in_any_order_and_lower_case_sig_escapes() {
    let key = SymmetricKey::random();
    let id = regid("dev-1");
    let token = SasToken::build(&scope(), &id, &key, 50, SasStyle::default());
    let parsed = token.parse().unwrap();
    let sig = token.expose().split("&sig=").nth(1).unwrap().split('&').next().unwrap();
    let reordered =
        format!("SharedAccessSignature skn=registration&se=50&sig={}&sr={}", lower_hex_escapes(sig), parsed.sr);
    let token = SasToken::from_password(reordered);
    assert_eq!(token.parse().unwrap().verify(&scope(), &id, 10, [&key]), Ok(()));
}

#[test]
fn refusals() {
    let key = SymmetricKey::random();
    let id = regid("dev-1");
    let token = SasToken::build(&scope(), &id, &key, 100, SasStyle::default());
    let parsed = token.parse().unwrap();
    assert_eq!(parsed.verify(&scope(), &id, 100, [&key]), Err(SasRefusal::Expired));
    assert_eq!(parsed.verify(&scope(), &regid("dev-2"), 1, [&key]), Err(SasRefusal::WrongResource));
    let other_scope = IdScope::new("0ne00000000").unwrap();
    assert_eq!(parsed.verify(&other_scope, &id, 1, [&key]), Err(SasRefusal::WrongResource));
    let other = SymmetricKey::random();
    assert_eq!(parsed.verify(&scope(), &id, 1, [&other]), Err(SasRefusal::BadSignature));
    assert_eq!(parsed.verify(&scope(), &id, 1, [&other, &key]), Ok(()));
}

#[test]
fn malformed_tokens_are_errors() {
    let cases = [
        ("sr=a&sig=b&se=1", CredentialError::NotSharedAccessSignature),
        ("SharedAccessSignature sr=a&sig=AA%3D%3D", CredentialError::MissingField("se")),
        ("SharedAccessSignature sr=a&sig=AA%3D%3D&se=x", CredentialError::BadExpiry("x".into())),
        ("SharedAccessSignature sr=a&sr=b&sig=AA&se=1", CredentialError::DuplicateField("sr".into())),
        ("SharedAccessSignature sr=a&sig=!!&se=1", CredentialError::MalformedField("sig".into())),
        ("SharedAccessSignature sr=a&garbage&se=1", CredentialError::MalformedField("garbage".into())),
    ];
    for (text, expected) in cases {
        assert_eq!(SasToken::from_password(text).parse().unwrap_err(), expected, "{text}");
    }
}

#[test]
fn registration_id_rules() {
    for ok in ["a", "dev-1", "A.b_c:d-", "x".repeat(128).as_str()] {
        assert!(RegistrationId::new(ok).is_ok(), "{ok}");
    }
    for bad in ["", "-a", "a.", "a b", "a/b", "é", "x".repeat(129).as_str()] {
        assert!(RegistrationId::new(bad).is_err(), "{bad}");
    }
}

#[test]
fn keys_are_validated_and_redacted() {
    assert_eq!(SymmetricKey::from_base64("not base64!"), Err(CredentialError::KeyNotBase64));
    assert_eq!(SymmetricKey::from_base64(""), Err(CredentialError::KeyLength(0)));
    let key = SymmetricKey::from_base64("  00mysymmetrickey\n").unwrap();
    assert_eq!(format!("{key:?}"), "SymmetricKey(<redacted 12 bytes>)");
    let token = SasToken::build(&scope(), &regid("d"), &key, 1, SasStyle::default());
    assert_eq!(format!("{token:?}"), "SasToken(<redacted>)");
    assert!(!format!("{:?}", token.parse().unwrap()).contains("sig"));
}

proptest! {
    #[test]
    fn build_parse_verify_round_trip(
        id in "[a-z0-9][a-z0-9._:-]{0,40}[a-z0-9]",
        expiry in 1u64..u64::MAX / 2,
        key in proptest::collection::vec(any::<u8>(), 1..=64),
        upper in any::<bool>(),
    ) {
        let key = SymmetricKey::from_bytes(&key);
        let id = regid(&id);
        let style = SasStyle {
            resource_encoding: if upper { ResourceEncoding::Upper } else { ResourceEncoding::Raw },
            ..SasStyle::default()
        };
        let token = SasToken::build(&scope(), &id, &key, expiry, style);
        let parsed = token.parse().unwrap();
        prop_assert_eq!(parsed.expiry, expiry);
        prop_assert_eq!(parsed.verify(&scope(), &id, expiry - 1, [&key]), Ok(()));
    }

    #[test]
    fn parse_never_panics(text in ".{0,200}") {
        let _ = SasToken::from_password(format!("SharedAccessSignature {text}")).parse();
        let _ = SasToken::from_password(text).parse();
    }
}

/// Rewrites `%2F` as `%2f`: the C SDKs' URL encoder emits lower-case hex digits.
fn lower_hex_escapes(encoded: &str) -> String {
    let mut out = String::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at..at + 3).unwrap_or(&rest[at..]);
        out.push_str(&escape.to_ascii_lowercase());
        rest = &rest[at + escape.len()..];
    }
    out.push_str(rest);
    out
}
