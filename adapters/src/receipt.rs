//! Receipts on the adapter side: signing with the world key. The format, its canonical
//! signing bytes and verification live in `aos_store::receipt`, where the kernel, fsck
//! and `aos receipts verify` use them with only a public key.

pub use aos_store::receipt::*;

use crate::signing::ReceiptSigner;

/// Sign `unsigned` with the world's receipt key.
pub fn sign(unsigned: Unsigned, signer: &ReceiptSigner) -> Result<Receipt, ReceiptError> {
    Receipt::sign_with(unsigned, |m| signer.sign(m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aos_store::{canon, Hash};
    use serde_json::json;

    fn sample(signer: &ReceiptSigner) -> Receipt {
        sign(
            Unsigned {
                intent_hash: Hash::of(b"intent"),
                effect_kind: "timer.set".into(),
                adapter_id: "timer".into(),
                status: Status::Ok,
                payload: json!({"delivered_at_ns": 5, "key": null}),
                started_ns: 1,
                finished_ns: canon::MAX_SAFE_INT + 10,
                cost_cents: Some(3),
            },
            signer,
        )
        .unwrap()
    }

    #[test]
    fn signing_bytes_are_canonical_json() {
        let signer = ReceiptSigner::generate().unwrap();
        let r = sample(&signer);
        let expected = json!({
            "adapter_id": r.adapter_id,
            "cost_cents": 3,
            "domain": DOMAIN,
            "effect_kind": r.effect_kind,
            "finished_ns": canon::u64_value(r.finished_ns),
            "intent_hash": r.intent_hash.to_string(),
            "payload_hash": r.payload_hash.to_string(),
            "started_ns": 1,
            "status": "ok",
        });
        assert_eq!(
            r.signing_bytes(),
            canon::value_to_vec(&expected).unwrap(),
            "{}",
            String::from_utf8_lossy(&r.signing_bytes())
        );
        let mut none = r.clone();
        none.cost_cents = None;
        assert!(canon::is_canonical(&none.signing_bytes()));
    }

    #[test]
    fn failure_payloads_are_messages() {
        let signer = ReceiptSigner::generate().unwrap();
        let mut u = Unsigned {
            intent_hash: Hash::of(b"i"),
            effect_kind: "http.request".into(),
            adapter_id: "http".into(),
            status: Status::Error,
            payload: json!({"status": 500}),
            started_ns: 0,
            finished_ns: 0,
            cost_cents: None,
        };
        assert!(sign(u.clone(), &signer).is_err());
        u.payload = failure_payload("boom");
        let r = sign(u, &signer).unwrap();
        r.verify(&signer.public_key()).unwrap();
    }
}
