use super::*;
use aos_store::canon::MAX_SAFE_INT;
use serde_json::json;

fn ty(v: Value) -> TypeExpr {
    let mut d = Vec::new();
    let t = TypeExpr::parse(&v, "", &mut d);
    assert!(d.is_empty(), "{d:?}");
    t.unwrap()
}

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

fn canon(v: Value, t: &TypeExpr) -> Result<Value, Vec<Diagnostic>> {
    canonicalize(&v, t, &())
}

fn ok(v: Value, t: &TypeExpr) -> Value {
    match canon(v.clone(), t) {
        Ok(c) => {
            assert_eq!(
                canon(c.clone(), t).as_ref(),
                Ok(&c),
                "not a fixed point: {c}"
            );
            c
        }
        Err(d) => panic!("{v} at {}: {d:#?}", t.describe()),
    }
}

fn errs(v: Value, t: &TypeExpr) -> Vec<Diagnostic> {
    match canon(v.clone(), t) {
        Ok(c) => panic!("{v} accepted as {c} at {}", t.describe()),
        Err(d) => d,
    }
}

fn codes(d: &[Diagnostic]) -> Vec<(&str, &str)> {
    d.iter().map(|d| (d.code, d.pointer.as_str())).collect()
}

#[test]
fn every_type_reads_both_lenses_the_same() {
    let h = format!("blake3:{}", "ab".repeat(32));
    let cases: Vec<(Value, Vec<Value>, Value)> = vec![
        (
            json!({"bool": {}}),
            vec![json!(true), json!({"bool": true})],
            json!(true),
        ),
        (
            json!({"int": {}}),
            vec![
                json!(-1),
                json!("-1"),
                json!({"int": -1}),
                json!({"int": "-1"}),
            ],
            json!(-1),
        ),
        (
            json!({"nat": {}}),
            vec![json!(42), json!("42"), json!({"nat": 42}), json!(42.0)],
            json!(42),
        ),
        (
            json!({"dec128": {}}),
            vec![
                json!("1.50"),
                json!({"dec128": "+1.5"}),
                json!(1.5),
                json!("15e-1"),
            ],
            json!("1.5"),
        ),
        (
            json!({"bytes": {}}),
            vec![
                json!("aGk="),
                json!("aGk"),
                json!({"bytes": "aGk="}),
                json!({"bytes_b64": "aGk"}),
            ],
            json!("aGk="),
        ),
        (
            json!({"text": {}}),
            vec![json!("x"), json!({"text": "x"})],
            json!("x"),
        ),
        (
            json!({"time": {}}),
            vec![
                json!(1_000_000_000),
                json!("1970-01-01T00:00:01Z"),
                json!({"time": "1970-01-01T01:00:01+01:00"}),
                json!({"time_ns": 1_000_000_000}),
                json!({"time": "1000000000"}),
            ],
            json!(1_000_000_000),
        ),
        (
            json!({"duration": {}}),
            vec![
                json!(-5),
                json!("-5"),
                json!({"duration": -5}),
                json!({"duration_ns": "-5"}),
            ],
            json!(-5),
        ),
        (
            json!({"hash": {}}),
            vec![json!(h), json!({"hash": h})],
            json!(h),
        ),
        (
            json!({"uuid": {}}),
            vec![
                json!("123E4567-E89B-12D3-A456-426614174000"),
                json!({"uuid": "123e4567-e89b-12d3-a456-426614174000"}),
            ],
            json!("123e4567-e89b-12d3-a456-426614174000"),
        ),
        (
            json!({"unit": {}}),
            vec![json!({}), json!({"unit": {}})],
            json!({}),
        ),
        (
            json!({"record": {"a": {"nat": {}}, "b": {"option": {"text": {}}}}}),
            vec![
                json!({"a": 1}),
                json!({"a": 1, "b": null}),
                json!({"record": {"a": {"nat": 1}, "b": {"none": {}}}}),
                json!({"record": {"a": "1"}}),
            ],
            json!({"a": 1, "b": null}),
        ),
        (
            json!({"variant": {"Ok": {"nat": {}}, "Stop": {"unit": {}}}}),
            vec![
                json!({"Ok": 7}),
                json!({"variant": {"tag": "Ok", "value": {"nat": 7}}}),
                json!({"$tag": "Ok", "$value": "7"}),
            ],
            json!({"$tag": "Ok", "$value": 7}),
        ),
        (
            json!({"variant": {"Ok": {"nat": {}}, "Stop": {"unit": {}}}}),
            vec![
                json!("Stop"),
                json!({"Stop": {}}),
                json!({"Stop": null}),
                json!({"variant": {"tag": "Stop"}}),
                json!({"$tag": "Stop"}),
                json!({"$tag": "Stop", "$value": {}}),
            ],
            json!({"$tag": "Stop"}),
        ),
        (
            json!({"list": {"nat": {}}}),
            vec![json!([3, 1, 3]), json!({"list": [{"nat": 3}, "1", 3]})],
            json!([3, 1, 3]),
        ),
        (
            json!({"set": {"nat": {}}}),
            vec![json!([3, 1, 3]), json!({"set": [{"nat": 3}, "1", 3]})],
            json!([1, 3]),
        ),
        (
            json!({"map": {"key": {"text": {}}, "value": {"nat": {}}}}),
            vec![
                json!({"b": 2, "a": 1}),
                json!([["b", 2], ["a", 1]]),
                json!({"map": [{"key": {"text": "b"}, "value": 2}, ["a", {"nat": 1}]]}),
            ],
            json!({"a": 1, "b": 2}),
        ),
        (
            json!({"map": {"key": {"nat": {}}, "value": {"text": {}}}}),
            vec![
                json!({"10": "x", "9": "y"}),
                json!([[10, "x"], [9, "y"]]),
                json!({"map": [{"key": {"nat": 9}, "value": "y"}, ["10", {"text": "x"}]]}),
            ],
            json!([[10, "x"], [9, "y"]]),
        ),
        (
            json!({"option": {"nat": {}}}),
            vec![
                json!(5),
                json!({"option": 5}),
                json!({"option": {"nat": "5"}}),
            ],
            json!(5),
        ),
        (
            json!({"option": {"nat": {}}}),
            vec![
                json!(null),
                json!({"none": {}}),
                json!({"null": {}}),
                json!({"option": null}),
            ],
            json!(null),
        ),
    ];
    for (t, inputs, want) in cases {
        let t = ty(t);
        let mut hashes = std::collections::BTreeSet::new();
        for input in inputs {
            let got = ok(input.clone(), &t);
            assert_eq!(got, want, "{input} at {}", t.describe());
            hashes.insert(typed_value_hash(&Hash::of(b"s"), &got));
        }
        assert_eq!(hashes.len(), 1);
    }
}

#[test]
fn lenses_mix_at_different_depths() {
    let t = ty(json!({"record": {
        "items": {"list": {"record": {"sku": {"text": {}}, "price": {"dec128": {}}}}},
        "state": {"variant": {"Open": {"unit": {}}, "Paid": {"record": {"at": {"time": {}}}}}}
    }}));
    let sugar = json!({"items": [{"sku": "a", "price": "1.50"}], "state": {"Paid": {"at": "2024-01-01T00:00:00Z"}}});
    let mixed = json!({"record": {
        "items": {"list": [{"record": {"sku": {"text": "a"}, "price": 1.5}}]},
        "state": {"variant": {"tag": "Paid", "value": {"at": {"time_ns": "1704067200000000000"}}}}
    }});
    let a = ok(sugar, &t);
    assert_eq!(a, ok(mixed, &t));
    assert_eq!(
        a,
        json!({"items": [{"sku": "a", "price": "1.5"}], "state": {"$tag": "Paid", "$value": {"at": "1704067200000000000"}}})
    );
}

#[test]
fn sixty_four_bit_integers_at_the_safe_boundary() {
    let nat = ty(json!({"nat": {}}));
    let int = ty(json!({"int": {}}));
    let s = MAX_SAFE_INT;
    assert_eq!(ok(json!(s), &nat), json!(s));
    assert_eq!(ok(json!(s.to_string()), &nat), json!(s));
    assert_eq!(ok(json!(s + 1), &nat), json!((s + 1).to_string()));
    assert_eq!(
        ok(json!((s + 1).to_string()), &nat),
        json!((s + 1).to_string())
    );
    assert_eq!(ok(json!(u64::MAX), &nat), json!(u64::MAX.to_string()));
    assert_eq!(ok(json!(-(s as i64)), &int), json!(-(s as i64)));
    assert_eq!(
        ok(json!(-(s as i64) - 1), &int),
        json!((-(s as i64) - 1).to_string())
    );
    assert_eq!(
        ok(json!(i64::MIN.to_string()), &int),
        json!(i64::MIN.to_string())
    );
    assert_eq!(ok(json!(i64::MAX), &int), json!(i64::MAX.to_string()));
    for (v, t, code) in [
        (json!(-1), &nat, "out_of_range"),
        (json!("18446744073709551616"), &nat, "out_of_range"),
        (json!("9223372036854775808"), &int, "out_of_range"),
        (json!("-9223372036854775809"), &int, "out_of_range"),
        (json!(u64::MAX), &int, "out_of_range"),
        (json!("0042"), &nat, "bad_format"),
        (json!("4 2"), &nat, "bad_format"),
        (json!(""), &nat, "bad_format"),
        (json!(1.5), &nat, "type_mismatch"),
        (json!(1e19), &nat, "bad_format"),
        (json!(true), &nat, "type_mismatch"),
        (json!({"int": 1}), &nat, "type_mismatch"),
        (json!("1".repeat(200)), &nat, "out_of_range"),
    ] {
        let d = errs(v.clone(), t);
        assert_eq!(d.len(), 1, "{v}: {d:?}");
        assert_eq!(d[0].code, code, "{v}: {d:?}");
    }
}

#[test]
fn dec128_normalization() {
    let t = ty(json!({"dec128": {}}));
    for (input, want) in [
        (json!("0.20"), "0.2"),
        (json!("1e3"), "1000"),
        (json!("1E+3"), "1000"),
        (json!("+1.50"), "1.5"),
        (json!("-0"), "0"),
        (json!("-0.000"), "0"),
        (json!("0e99999999999999999999"), "0"),
        (json!("007.0700"), "7.07"),
        (json!(".5"), "0.5"),
        (json!("5."), "5"),
        (json!("-12.340e-3"), "-0.01234"),
        (json!("123.456e1"), "1234.56"),
        (json!("1.5e-7"), "0.00000015"),
        (json!("100"), "100"),
        (json!(0), "0"),
        (json!(-17), "-17"),
        (json!(0.1), "0.1"),
        (json!(1e21), "1000000000000000000000"),
        (json!(u64::MAX), "18446744073709551615"),
        (json!("9".repeat(34)), "9999999999999999999999999999999999"),
        (
            json!(format!("0.{}1", "0".repeat(40))),
            "0.00000000000000000000000000000000000000001",
        ),
        (json!("1e6144"), ""),
        (json!({"dec128": "2.50"}), "2.5"),
    ] {
        let got = ok(input.clone(), &t);
        if want.is_empty() {
            assert_eq!(got.as_str().map(str::len), Some(6145), "{input}");
        } else {
            assert_eq!(got, json!(want), "{input}");
        }
    }
    for (bad, code) in [
        ("", "bad_format"),
        ("-", "bad_format"),
        (".", "bad_format"),
        ("1e", "bad_format"),
        ("1.2.3", "bad_format"),
        ("NaN", "bad_format"),
        ("Infinity", "bad_format"),
        (" 1", "bad_format"),
        ("0x10", "bad_format"),
        ("1_000", "bad_format"),
        ("12345678901234567890123456789012345", "out_of_range"),
        ("1e6145", "out_of_range"),
        ("1e-6177", "out_of_range"),
        ("1e999999999999999999999", "out_of_range"),
    ] {
        let d = errs(json!(bad), &t);
        assert_eq!(d[0].code, code, "{bad:?}: {d:?}");
    }
    assert_eq!(
        ok(json!("1.00000000000000000000000000000000000000"), &t),
        json!("1")
    );
}

#[test]
fn rfc3339_table() {
    let t = ty(json!({"time": {}}));
    let day = 86_400_000_000_000u64;
    for (input, want) in [
        ("1970-01-01T00:00:00Z", 0u64),
        ("1970-01-01t00:00:00z", 0),
        ("1970-01-01 00:00:00Z", 0),
        ("1970-01-02T00:00:00Z", day),
        ("1970-01-01T00:00:00.5Z", 500_000_000),
        ("1970-01-01T00:00:00.000000001Z", 1),
        ("1970-01-01T00:00:00.123456789Z", 123_456_789),
        ("1970-01-01T01:00:00+01:00", 0),
        ("1969-12-31T23:00:00-01:00", 0),
        ("1970-01-01T05:30:00.25+05:30", 250_000_000),
        ("2000-03-01T00:00:00Z", 11_017 * day),
        ("2024-02-29T12:00:00Z", 1_709_208_000_000_000_000),
        ("2262-04-11T23:47:16.854775807Z", i64::MAX as u64),
        ("2554-07-21T23:34:33.709551615Z", u64::MAX),
    ] {
        let got = ok(json!(input), &t);
        assert_eq!(got, aos_store::canon::u64_value(want), "{input}");
    }
    for (bad, code) in [
        ("1969-12-31T23:59:59Z", "out_of_range"),
        ("2554-07-21T23:34:33.709551616Z", "out_of_range"),
        ("2023-02-29T00:00:00Z", "bad_format"),
        ("2024-13-01T00:00:00Z", "bad_format"),
        ("2024-01-01T24:00:00Z", "bad_format"),
        ("2024-01-01T23:60:00Z", "bad_format"),
        ("2024-01-01T23:59:60Z", "bad_format"),
        ("2024-01-01T00:00:00", "bad_format"),
        ("2024-01-01T00:00:00.Z", "bad_format"),
        ("2024-01-01T00:00:00.1234567891Z", "bad_format"),
        ("2024-01-01T00:00:00+0100", "bad_format"),
        ("2024-01-01T00:00:00+24:00", "bad_format"),
        ("2024-01-01", "bad_format"),
        ("2024-1-01T00:00:00Z", "bad_format"),
        ("2024-01-01T00:00:00Zjunk", "bad_format"),
        ("2024-01-01T00:00:00+01:00junk", "bad_format"),
        ("-1", "out_of_range"),
        ("１９７０-01-01T00:00:00Z", "bad_format"),
    ] {
        let d = errs(json!(bad), &t);
        assert_eq!(d[0].code, code, "{bad:?}: {d:?}");
    }
    // `time_ns` and `duration` are integer nanoseconds only.
    assert_eq!(
        errs(json!({"time_ns": "1970-01-01T00:00:00Z"}), &t)[0].code,
        "bad_format"
    );
    let dur = ty(json!({"duration": {}}));
    assert_eq!(
        errs(json!("1970-01-01T00:00:00Z"), &dur)[0].code,
        "bad_format"
    );
    assert_eq!(errs(json!("5s"), &dur)[0].code, "bad_format");
}

#[test]
fn bytes_hash_uuid_formats() {
    let b = ty(json!({"bytes": {}}));
    assert_eq!(ok(json!(""), &b), json!(""));
    assert_eq!(ok(json!("aGVsbG8"), &b), json!("aGVsbG8="));
    for bad in ["aGVsbG8-", "aGVs bG8=", "a", "aGVsbG9="] {
        assert_eq!(errs(json!(bad), &b)[0].code, "bad_format", "{bad}");
    }
    let h = ty(json!({"hash": {}}));
    for bad in [
        format!("blake3:{}", "AB".repeat(32)),
        "ab".repeat(32),
        format!("sha256:{}", "ab".repeat(32)),
        format!("blake3:{}", "ab".repeat(31)),
    ] {
        assert_eq!(errs(json!(bad), &h)[0].code, "bad_format", "{bad}");
    }
    let u = ty(json!({"uuid": {}}));
    for bad in [
        "123e4567e89b12d3a456426614174000",
        "{123e4567-e89b-12d3-a456-426614174000}",
        "123e4567-e89b-12d3-a456-42661417400g",
    ] {
        assert_eq!(errs(json!(bad), &u)[0].code, "bad_format", "{bad}");
    }
}

#[test]
fn sets_dedupe_and_sort_by_canonical_bytes() {
    let t = ty(json!({"set": {"text": {}}}));
    assert_eq!(
        ok(json!(["b", "a", "b", "A", "aa"]), &t),
        json!(["A", "a", "aa", "b"])
    );
    let t = ty(json!({"set": {"nat": {}}}));
    // Canonical bytes: `"9007…"` (a string) sorts before digits; `10` before `9`.
    let big = (MAX_SAFE_INT + 1).to_string();
    assert_eq!(
        ok(json!([9, 10, big.clone(), 10, "9"]), &t),
        json!([big, 10, 9])
    );
    let t = ty(json!({"set": {"record": {"a": {"nat": {}}, "b": {"option": {"nat": {}}}}}}));
    assert_eq!(
        ok(
            json!([{"a": 2}, {"a": 1, "b": null}, {"b": null, "a": 1}, {"a": 1}]),
            &t
        ),
        json!([{"a": 1, "b": null}, {"a": 2, "b": null}])
    );
    let t = ty(json!({"set": {"uuid": {}}}));
    let u = "123e4567-e89b-12d3-a456-426614174000";
    assert_eq!(ok(json!([u, u.to_uppercase()]), &t), json!([u]));
}

#[test]
fn map_keys_are_ordered_and_unique() {
    let t = ty(json!({"map": {"key": {"int": {}}, "value": {"text": {}}}}));
    assert_eq!(
        ok(
            json!([[3, "c"], [-1, "m"], [20, "t"], ["-9007199254740992", "big"]]),
            &t
        ),
        json!([["-9007199254740992", "big"], [-1, "m"], [20, "t"], [3, "c"]])
    );
    let d = errs(json!([[1, "a"], [2, "b"], ["1", "c"]]), &t);
    assert_eq!(codes(&d), [("duplicate_key", "/2")]);
    let d = errs(json!({"1": "a", "01": "b"}), &t);
    assert_eq!(codes(&d), [("bad_format", "/01")]);
    assert!(d[0].message.starts_with("map key"), "{}", d[0].message);
    let t = ty(json!({"map": {"key": {"text": {}}, "value": {"nat": {}}}}));
    assert_eq!(
        codes(&errs(json!([["a", 1], ["a", 2]]), &t)),
        [("duplicate_key", "/1")]
    );
    assert_eq!(ok(json!({"map": []}), &t), json!({}));
    assert_eq!(ok(json!({"map": {"k": 1}}), &t), json!({"k": 1}));
    let t = ty(json!({"map": {"key": {"uuid": {}}, "value": {"nat": {}}}}));
    let u = "123e4567-e89b-12d3-a456-426614174000";
    assert_eq!(
        codes(&errs(json!({u: 1, u.to_uppercase(): 2}), &t)).len(),
        1
    );
    let t = ty(json!({"map": {"key": {"hash": {}}, "value": {"nat": {}}}}));
    let (h1, h2) = (
        format!("blake3:{}", "1".repeat(64)),
        format!("blake3:{}", "0".repeat(64)),
    );
    assert_eq!(
        ok(json!({h1.clone(): 1, h2.clone(): 2}), &t),
        json!([[h2, 2], [h1, 1]])
    );
}

#[test]
fn errors_are_located_and_all_reported() {
    let t = ty(json!({"record": {
        "items": {"list": {"record": {"sku": {"text": {}}, "price": {"dec128": {}}}}},
        "owner": {"text": {}},
        "note": {"option": {"text": {}}}
    }}));
    let d = errs(
        json!({"items": [{"sku": "a", "price": "1"}, {"sku": 5, "price": "x"}, {"sku": "c", "price": "2", "colour": "red"}, {}], "extra": 1}),
        &t,
    );
    let mut got = codes(&d);
    got.sort();
    assert_eq!(
        got,
        [
            ("bad_format", "/items/1/price"),
            ("missing_field", ""),
            ("missing_field", "/items/3"),
            ("missing_field", "/items/3"),
            ("type_mismatch", "/items/1/sku"),
            ("unknown_field", "/extra"),
            ("unknown_field", "/items/2/colour"),
        ]
    );
    let sku = d.iter().find(|d| d.pointer == "/items/1/sku").unwrap();
    assert_eq!(sku.expected.as_deref(), Some("text"));
    assert_eq!(sku.found.as_deref(), Some("5"));
    // Pointers follow the JSON actually written, through tagged wrappers too.
    let d = errs(
        json!({"record": {"items": {"list": [{"record": {"sku": {"text": 1}, "price": "1"}}]}, "owner": "o"}}),
        &t,
    );
    assert_eq!(
        codes(&d),
        [("type_mismatch", "/record/items/list/0/record/sku/text")]
    );
    // Keys with `/` and `~` are escaped.
    let m = ty(json!({"map": {"key": {"text": {}}, "value": {"nat": {}}}}));
    assert_eq!(
        codes(&errs(json!({"a/b~c": -1}), &m)),
        [("out_of_range", "/a~1b~0c")]
    );
}

#[test]
fn variant_errors() {
    let t = ty(json!({"variant": {"Ok": {"nat": {}}, "Stop": {"unit": {}}}}));
    assert_eq!(
        codes(&errs(json!({"Nope": 1}), &t)),
        [("unknown_arm", "/Nope")]
    );
    assert_eq!(codes(&errs(json!("Nope"), &t)), [("unknown_arm", "")]);
    assert_eq!(codes(&errs(json!("Ok"), &t)), [("type_mismatch", "")]);
    assert_eq!(
        codes(&errs(json!({"Ok": 1, "Stop": {}}), &t)),
        [("type_mismatch", "")]
    );
    assert_eq!(
        codes(&errs(json!({"$tag": "Ok"}), &t)),
        [("missing_field", "")]
    );
    assert_eq!(
        codes(&errs(json!({"$tag": "X", "$value": 1}), &t)),
        [("unknown_arm", "/$tag")]
    );
    assert_eq!(
        codes(&errs(json!({"$tag": "Ok", "$value": -1}), &t)),
        [("out_of_range", "/$value")]
    );
    assert_eq!(
        codes(&errs(json!({"variant": {"tag": "Ok", "value": -1}}), &t)),
        [("out_of_range", "/variant/value")]
    );
    assert_eq!(
        codes(&errs(
            json!({"variant": {"tag": "Ok", "value": 1, "x": 1}}),
            &t
        )),
        [("unknown_field", "/variant/x")]
    );
    assert_eq!(
        codes(&errs(json!({"variant": {"value": 1}}), &t)),
        [("missing_field", "/variant")]
    );
    assert_eq!(
        codes(&errs(json!({"Stop": 1}), &t)),
        [("type_mismatch", "/Stop")]
    );
    assert_eq!(codes(&errs(json!(3), &t)), [("type_mismatch", "")]);
}

#[test]
fn ambiguous_objects_prefer_sugar_then_tagged() {
    // A record whose only field is named `record`.
    let t = ty(json!({"record": {"record": {"option": {"record": {"x": {"nat": {}}}}}}}));
    assert_eq!(
        ok(json!({"record": {"x": 1}}), &t),
        json!({"record": {"x": 1}})
    );
    assert_eq!(
        ok(json!({"record": {"record": {"x": 1}}}), &t),
        json!({"record": {"x": 1}})
    );
    assert_eq!(
        ok(json!({"record": {"record": null}}), &t),
        json!({"record": null})
    );
    assert_eq!(ok(json!({"record": null}), &t), json!({"record": null}));
    // A record with a single `text` field, and its tagged reading is meaningless.
    let t = ty(json!({"record": {"text": {"text": {}}}}));
    assert_eq!(ok(json!({"text": "hi"}), &t), json!({"text": "hi"}));
    assert_eq!(
        ok(json!({"record": {"text": "hi"}}), &t),
        json!({"text": "hi"})
    );
    // A variant arm named `variant`.
    let t = ty(json!({"variant": {"variant": {"text": {}}, "Ok": {"unit": {}}}}));
    assert_eq!(
        ok(json!({"variant": "x"}), &t),
        json!({"$tag": "variant", "$value": "x"})
    );
    assert_eq!(
        ok(json!({"variant": {"tag": "Ok"}}), &t),
        json!({"$tag": "Ok"})
    );
    // An arm named `$tag` cannot hijack the canonical envelope.
    let t = ty(json!({"variant": {"$tag": {"text": {}}, "A": {"unit": {}}}}));
    let c = ok(json!("A"), &t);
    assert_eq!(c, json!({"$tag": "A"}));
    assert_eq!(
        ok(json!({"$tag": "$tag", "$value": "A"}), &t),
        json!({"$tag": "$tag", "$value": "A"})
    );
    // A text map whose one key is `map`.
    let t = ty(json!({"map": {"key": {"text": {}}, "value": {"list": {"nat": {}}}}}));
    assert_eq!(ok(json!({"map": [1, 2]}), &t), json!({"map": [1, 2]}));
    assert_eq!(ok(json!({"map": [["k", [1]]]}), &t), json!({"k": [1]}));
    let t = ty(json!({"map": {"key": {"text": {}}, "value": {"text": {}}}}));
    assert_eq!(ok(json!({"map": []}), &t), json!({}));
    // Options around objects keyed `none` / `option`.
    let t = ty(json!({"option": {"map": {"key": {"text": {}}, "value": {"unit": {}}}}}));
    assert_eq!(ok(json!({"none": {}}), &t), json!({"none": {}}));
    assert_eq!(ok(json!({"option": {"none": {}}}), &t), json!({"none": {}}));
    let t = ty(json!({"option": {"map": {"key": {"text": {}}, "value": {"nat": {}}}}}));
    assert_eq!(ok(json!({"none": {}}), &t), json!(null));
    // Neither reading validates: the one that got furthest into the value is reported.
    let t = ty(json!({"record": {"record": {"nat": {}}, "b": {"nat": {}}}}));
    let d = errs(json!({"record": {"record": -1, "b": 2}}), &t);
    assert_eq!(codes(&d), [("out_of_range", "/record/record")]);
    let d = errs(json!({"record": 5}), &t);
    assert_eq!(codes(&d), [("type_mismatch", "/record")]);
    let t = ty(json!({"option": {"record": {"a": {"nat": {}}}}}));
    assert_eq!(
        codes(&errs(json!({"option": {"a": "x"}}), &t)),
        [("bad_format", "/option/a")]
    );
    let t = ty(json!({"map": {"key": {"text": {}}, "value": {"nat": {}}}}));
    assert_eq!(
        codes(&errs(json!({"map": [["a", -1]]}), &t)),
        [("out_of_range", "/map/0/1")]
    );
    // On a tie the sugar reading's errors are reported.
    let t = ty(json!({"record": {"record": {"nat": {}}}}));
    assert_eq!(
        codes(&errs(json!({"record": "x"}), &t)),
        [("bad_format", "/record")]
    );
}

#[test]
fn nested_ambiguity_is_linear_not_exponential() {
    // R = record {record: option<R>}: every level reads two ways.
    let mut schemas = BTreeMap::new();
    schemas.insert(
        name("t/R@1"),
        ty(json!({"record": {"record": {"option": {"ref": "t/R@1"}}}})),
    );
    let t = ty(json!({"ref": "t/R@1"}));
    let mut v = json!({"record": {"nat": 1}});
    for _ in 0..60 {
        v = json!({"record": v});
    }
    let start = std::time::Instant::now();
    let r = canonicalize(&v, &t, &schemas);
    assert!(r.is_err());
    assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
    // Every level also has an all-sugar reading, which wins (and so must fit the depth).
    let mut v = json!({"record": null});
    for _ in 0..30 {
        v = json!({"record": {"record": v}});
    }
    let c = canonicalize(&v, &t, &schemas).unwrap();
    assert_eq!(c.to_string().matches("record").count(), 61);
    assert_eq!(canonicalize(&c, &t, &schemas), Ok(c));
}

#[test]
fn refs_resolve_and_limits_hold() {
    let mut schemas: BTreeMap<Name, TypeExpr> = BTreeMap::new();
    schemas.insert(
        name("t/Point@1"),
        ty(json!({"record": {"x": {"int": {}}, "y": {"int": {}}}})),
    );
    schemas.insert(
        name("t/List@1"),
        ty(json!({"variant": {"Nil": {"unit": {}}, "Cons": {"record": {"head": {"nat": {}}, "tail": {"ref": "t/List@1"}}}}})),
    );
    schemas.insert(name("t/Loop@1"), ty(json!({"ref": "t/Loop2@1"})));
    schemas.insert(name("t/Loop2@1"), ty(json!({"ref": "t/Loop@1"})));
    schemas.insert(name("t/Opt@1"), ty(json!({"option": {"ref": "t/Opt@1"}})));
    schemas.insert(name("t/MaybeN@1"), ty(json!({"option": {"nat": {}}})));
    let p = ty(json!({"ref": "t/Point@1"}));
    assert_eq!(
        canonicalize(&json!({"x": 1, "y": "-2"}), &p, &schemas),
        Ok(json!({"x": 1, "y": -2}))
    );
    let d = canonicalize(&json!({"x": 1}), &p, &schemas).unwrap_err();
    assert_eq!(codes(&d), [("missing_field", "")]);
    assert!(d[0].message.contains("t/Point@1"), "{}", d[0].message);

    let l = ty(json!({"ref": "t/List@1"}));
    let mut v = json!("Nil");
    for i in 0..20 {
        v = json!({"Cons": {"head": i, "tail": v}});
    }
    assert!(canonicalize(&v, &l, &schemas).is_ok());
    for _ in 0..60 {
        v = json!({"Cons": {"head": 0, "tail": v}});
    }
    let d = canonicalize(&v, &l, &schemas).unwrap_err();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].code, "too_deep");

    let d = canonicalize(&json!(1), &ty(json!({"ref": "t/Loop@1"})), &schemas).unwrap_err();
    assert_eq!(codes(&d), [("too_deep", "")]);
    let d = canonicalize(&json!(1), &ty(json!({"ref": "t/Opt@1"})), &schemas).unwrap_err();
    assert_eq!(codes(&d), [("too_deep", "")]);
    assert_eq!(
        canonicalize(&json!(null), &ty(json!({"ref": "t/Opt@1"})), &schemas),
        Ok(json!(null))
    );
    let d = canonicalize(
        &json!({"a": 1}),
        &ty(json!({"record": {"a": {"ref": "t/Nope@1"}}})),
        &schemas,
    )
    .unwrap_err();
    assert_eq!(codes(&d), [("unknown_schema", "/a")]);
    // A missing field whose type is a ref to an option is none.
    let r = ty(json!({"record": {"n": {"ref": "t/MaybeN@1"}}}));
    assert_eq!(
        canonicalize(&json!({}), &r, &schemas),
        Ok(json!({"n": null}))
    );
    // HashMap works as a schema source too.
    let hm: HashMap<Name, TypeExpr> = schemas.clone().into_iter().collect();
    assert_eq!(
        canonicalize(&json!({"x": 1, "y": 2}), &p, &hm),
        Ok(json!({"x": 1, "y": 2}))
    );
}

#[test]
fn deep_plain_nesting_is_refused_not_overflowed() {
    let mut t = ty(json!({"nat": {}}));
    let mut v = json!(1);
    for _ in 0..200 {
        t = TypeExpr::List(Box::new(t));
        v = json!([v]);
    }
    let d = canonicalize(&v, &t, &()).unwrap_err();
    assert_eq!(d[0].code, "too_deep");
    assert_eq!(d[0].pointer, "/0".repeat(65));
}

#[test]
fn typed_value_hash_binds_the_schema() {
    let v = json!({"x": 1, "y": 2});
    let def = |n: &str| {
        Hash::of(&aos_store::canon::to_vec(&json!({"$kind": "defschema", "name": n, "type": {"record": {"x": {"int": {}}, "y": {"int": {}}}}})).unwrap())
    };
    let (a, b) = (def("demo/Point@1"), def("demo/Vec2@1"));
    assert_ne!(a, b);
    assert_ne!(typed_value_hash(&a, &v), typed_value_hash(&b, &v));
    let manual =
        Hash::of(&aos_store::canon::to_vec(&json!({"schema": a.to_string(), "value": v})).unwrap());
    assert_eq!(typed_value_hash(&a, &v), manual);
}

#[test]
fn big_collections_are_fast() {
    let t = ty(json!({"set": {"nat": {}}}));
    let v = Value::Array((0..200_000u64).rev().map(|i| json!(i % 150_000)).collect());
    let start = std::time::Instant::now();
    let c = canonicalize(&v, &t, &()).unwrap();
    assert_eq!(c.as_array().unwrap().len(), 150_000);
    let m = ty(json!({"map": {"key": {"nat": {}}, "value": {"text": {}}}}));
    let v = Value::Array((0..100_000u64).map(|i| json!([i, "v"])).collect());
    canonicalize(&v, &m, &()).unwrap();
    let l = ty(json!({"list": {"text": {}}}));
    let v = Value::Array((0..100_000u64).map(|i| json!(i)).collect());
    assert_eq!(canonicalize(&v, &l, &()).unwrap_err().len(), 100_000);
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
}

#[test]
fn show_matches_diag_show() {
    for v in [
        json!(null),
        json!("x".repeat(79)),
        json!("x".repeat(80)),
        json!("é".repeat(200)),
        json!({"a": ["😀".repeat(100)]}),
        Value::Array((0..1000).map(Value::from).collect()),
    ] {
        assert_eq!(show(&v), crate::diag::show(&v));
    }
}

/// Run `f` on a thread with a 1 MiB stack (debug builds use the most).
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn worst_case_recursion_fits_a_small_stack() {
    // Each level crosses 15 options, every one written in the tagged lens (so each is an
    // ambiguous two-way reading), and a schema reference.
    let options = |mut x: Value, n: usize| {
        for _ in 0..n {
            x = json!({ "option": x });
        }
        x
    };
    let mut schemas = BTreeMap::new();
    schemas.insert(
        name("t/R@1"),
        ty(json!({"record": {"a": options(json!({"ref": "t/R@1"}), 15)}})),
    );
    schemas.insert(
        name("t/S@1"),
        ty(json!({"record": {"a": {"option": {"ref": "t/S@1"}}}})),
    );
    let mut deep = json!({"a": null});
    let mut long = json!({"a": null});
    for _ in 0..MAX_DEPTH - 1 {
        deep = json!({ "a": options(deep, 15) });
        long = json!({ "a": options(long, 1) });
    }
    on_small_stack(move || {
        let r = canonicalize(&deep, &ty(json!({"ref": "t/R@1"})), &schemas).unwrap_err();
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].code, "too_deep");
        assert!(
            r[0].pointer.starts_with("/a/option/option"),
            "{}",
            r[0].pointer
        );
        // Realistic depth: 64 levels of an optional reference, in the tagged lens.
        let t = ty(json!({"ref": "t/S@1"}));
        let c = canonicalize(&long, &t, &schemas).unwrap();
        assert_eq!(canonicalize(&c, &t, &schemas), Ok(c));
    });
    // A programmatic type with thousands of nested options (no value descent at all).
    let mut t = TypeExpr::Nat;
    for _ in 0..2000 {
        t = TypeExpr::Option(Box::new(t));
    }
    let t = std::sync::Arc::new(t);
    let t2 = t.clone();
    on_small_stack(move || {
        assert_eq!(
            codes(&canonicalize(&json!(5), &t2, &()).unwrap_err()),
            [("too_deep", "")]
        );
    });
}
