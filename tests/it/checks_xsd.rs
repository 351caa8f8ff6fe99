//! The `xsd` check kind (feature `xsd`): every response document validated
//! against the target's schema files; Exchange's `m:Notification` inside
//! `m:Notifications` is a note. The schema files are not in this
//! repository: `EWS_XSD_DIR`, or the `shared/xsd` folder beside the
//! checkout; without them the tests print why they skipped.
#![cfg(feature = "xsd")]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ews_conformance::case::Case;
use ews_conformance::case::template::Vars;
use ews_conformance::check::exchange::Exchange;
use ews_conformance::check::xsd::XsdValidator;
use ews_conformance::check::xsd_check::XsdCheck;
use ews_conformance::check::{Check, CheckRegistry, Finding, Severity, StepInput};
use ews_conformance::settings::Settings;
use ews_conformance::suite::operation::OpRegistry;
use ews_conformance::suite::target::start_embedded;
use ews_conformance::suite::{Executor, Loader, Target};

fn schema_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("EWS_XSD_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()?
            .join("shared")
            .join("xsd"),
    };
    let ok = ["messages.xsd", "types.xsd"]
        .iter()
        .all(|f| dir.join(f).is_file());
    if !ok {
        println!(
            "skipped: no EWS schema files in {}; set EWS_XSD_DIR",
            dir.display()
        );
    }
    ok.then_some(dir)
}

fn check() -> Option<XsdCheck> {
    let dir = schema_dir()?;
    let v = XsdValidator::from_dir(&dir).expect("the schema compiles");
    Some(XsdCheck::new(v, "the test schema"))
}

fn case() -> Case {
    let ops = OpRegistry::builtin();
    let checks = CheckRegistry::builtin();
    Loader::new(&ops, &checks)
        .parse(
            "title = \"t\"\nrequirements = [\"R2\"]\nisolate = false\n[[step]]\nname = \"poll\"\nop = \"GetEvents\"\nwith = { subscription = \"s\", watermark = \"w\" }\n",
            Path::new("cases/x/y.toml"),
            "x/y",
        )
        .expect("loads")
}

fn judge(check: &XsdCheck, body: &str) -> Vec<Finding> {
    let c = case();
    let ex = [Exchange {
        step: "poll".into(),
        line: 5,
        request: String::new(),
        status: Some(200),
        response_text: body.into(),
        duration: Duration::from_millis(1),
        error: None,
        findings: vec![],
        asked: None,
        at: std::time::Duration::ZERO,
        deadline: None,
    }];
    let vars = Vars::new();
    check.check(&StepInput::new(&c, &c.steps[0], &ex, &vars))
}

const GOOD: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetEventsResponseMessage ResponseClass="Error"><m:MessageText>x</m:MessageText><m:ResponseCode>ErrorInvalidWatermark</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:GetEventsResponseMessage></m:ResponseMessages></m:GetEventsResponse></s:Body></s:Envelope>"#;

#[test]
fn schema_findings_fail_and_the_wire_notification_is_a_note() {
    let Some(check) = check() else { return };
    assert!(judge(&check, GOOD).is_empty(), "{:?}", judge(&check, GOOD));

    let swapped = GOOD.replace(
        "<m:ResponseCode>ErrorInvalidWatermark</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>",
        "<m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:ResponseCode>ErrorInvalidWatermark</m:ResponseCode>",
    );
    let found = judge(&check, &swapped);
    assert!(
        found.iter().any(|f| f.severity == Severity::Fail
            && f.message.contains("against the test schema")
            && f.message.contains("ResponseCode")),
        "{found:?}"
    );

    let stream = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:GetStreamingEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notifications><m:Notification><t:SubscriptionId>S</t:SubscriptionId><t:StatusEvent/></m:Notification></m:Notifications><m:ConnectionStatus>OK</m:ConnectionStatus></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></s:Body></s:Envelope>"#;
    let found = judge(&check, stream);
    assert!(!found.is_empty());
    assert!(
        found.iter().all(|f| f.severity == Severity::Note),
        "only the documented conflict: {found:?}"
    );
}

/// The reference server's answers to a few cases validate against the schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_answers_validate() {
    let Some(dir) = schema_dir() else { return };
    let settings = Settings {
        xsd_dir: Some(dir),
        ..Settings::default()
    };
    let target = start_embedded(&settings).await.expect("embedded target");
    let checks = ews_conformance::suite::checks::registry_for(
        &settings,
        target.config(),
        ews_conformance::check::golden::GoldenMode::Compare,
    )
    .await
    .expect("the xsd check is built");
    assert!(checks.contains("xsd"));
    let config = target.config().clone();
    let executor = Executor::new(Arc::new(config))
        .expect("executor")
        .with_checks(checks);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("cases");
    let ops = OpRegistry::builtin();
    let loader = Loader::new(&ops, executor.checks());
    for id in [
        "getevents/created-item-event",
        "unsubscribe/twice",
        "envelope/https-namespaces",
    ] {
        let case = loader
            .load_file(&root, &root.join(format!("{id}.toml")))
            .expect("loads");
        let o = executor.run_case(&case).await;
        let xsd: Vec<_> = o.failures().filter(|f| f.check == "xsd").collect();
        assert!(xsd.is_empty(), "{id}: {xsd:#?}");
    }
    target.shutdown().await;
}
