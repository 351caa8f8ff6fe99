use std::sync::Arc;
use ews_conformance::model::drive::{Driver, ExploreConfig, explore};
use ews_conformance::model::{GenConfig, Mode};
use ews_conformance::settings::Settings;
use ews_conformance::suite::target;

fn property(mode: Mode) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let settings = Settings::default();
        let t = target::embedded(&settings).await.unwrap();
        let driver = Driver::for_target(Arc::clone(&t)).unwrap();
        let cfg = ExploreConfig { generator: GenConfig { modes: vec![mode], ..GenConfig::default() }, cases: Some(std::env::var("N").ok().and_then(|s| s.parse().ok()).unwrap_or(16)), seed: std::env::var("SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1), ..ExploreConfig::default() };
        let r = explore(&driver, &cfg).await.unwrap();
        println!("{}", r.summary());
        if let Some(f) = &r.found { panic!("{}", f.report()); }
    });
}
#[test] fn pull() { property(Mode::Pull) }
#[test] fn streaming() { property(Mode::Streaming) }
#[test] fn push() { property(Mode::Push) }
