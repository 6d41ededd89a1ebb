//! webrtc-rs: two `RTCPeerConnection`s on loopback in this process's
//! tokio runtime, as its own examples set one up (default interceptors),
//! host candidates on 127.0.0.1 only, no mDNS, candidates in the
//! descriptions (gathering completes before each is sent).

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::sync::mpsc;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{APIBuilder, API};
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;

use crate::Stack;

pub struct WebrtcRs {
    runtime: Runtime,
    api: Arc<API>,
    concurrency: usize,
}

pub struct Pair([Arc<RTCPeerConnection>; 2]);

impl WebrtcRs {
    pub fn new(concurrency: usize) -> WebrtcRs {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut media = MediaEngine::default();
        media.register_default_codecs().expect("default codecs");
        let registry = register_default_interceptors(Registry::new(), &mut media).expect("interceptors");
        let mut settings = SettingEngine::default();
        settings.set_include_loopback_candidate(true);
        settings.set_ip_filter(Box::new(|ip| ip.is_loopback()));
        settings.set_network_types(vec![NetworkType::Udp4]);
        settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
        let api = APIBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .build();
        WebrtcRs {
            runtime,
            api: Arc::new(api),
            concurrency: concurrency.max(1),
        }
    }
}

/// Sends once on `tx` when the channel opens.
fn notify_open(channel: &webrtc::data_channel::RTCDataChannel, tx: mpsc::Sender<()>) {
    channel.on_open(Box::new(move || {
        Box::pin(async move {
            let _ = tx.send(()).await;
        })
    }));
}

/// Applies `description` as `pc`'s local one and waits for gathering
/// to end: the description with every candidate in it.
async fn apply_gathered(pc: &RTCPeerConnection, description: RTCSessionDescription) -> RTCSessionDescription {
    let mut gathered = pc.gathering_complete_promise().await;
    pc.set_local_description(description)
        .await
        .expect("description applies");
    let _ = gathered.recv().await;
    pc.local_description().await.expect("local description")
}

async fn open(api: Arc<API>) -> Pair {
    let a = Arc::new(
        api.new_peer_connection(RTCConfiguration::default())
            .await
            .expect("peer connection"),
    );
    let b = Arc::new(
        api.new_peer_connection(RTCConfiguration::default())
            .await
            .expect("peer connection"),
    );
    let (tx, mut rx) = mpsc::channel(2);
    let channel = a.create_data_channel("bench", None).await.expect("data channel");
    notify_open(&channel, tx.clone());
    b.on_data_channel(Box::new(move |channel| {
        notify_open(&channel, tx.clone());
        Box::pin(async {})
    }));
    let offer = a.create_offer(None).await.expect("offer");
    let offer = apply_gathered(&a, offer).await;
    b.set_remote_description(offer).await.expect("offer applies");
    let answer = b.create_answer(None).await.expect("answer");
    let answer = apply_gathered(&b, answer).await;
    a.set_remote_description(answer).await.expect("answer applies");
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("webrtc-rs pair not connected in 30 s");
    }
    Pair([a, b])
}

async fn close(pair: Pair) {
    for pc in pair.0 {
        pc.close().await.expect("close");
    }
}

impl Stack for WebrtcRs {
    type Pair = Pair;

    fn open(&mut self) -> Pair {
        let pair = self.runtime.block_on(open(self.api.clone()));
        self.runtime
            .block_on(async { tokio::time::sleep(Duration::from_secs(2)).await });
        pair
    }

    fn open_many(&mut self, count: usize) -> Vec<Pair> {
        let mut pairs = Vec::with_capacity(count);
        while pairs.len() < count {
            let batch = self.concurrency.min(count - pairs.len());
            let tasks: Vec<_> = (0..batch).map(|_| self.runtime.spawn(open(self.api.clone()))).collect();
            for task in tasks {
                pairs.push(self.runtime.block_on(task).expect("open task"));
            }
        }
        self.runtime
            .block_on(async { tokio::time::sleep(Duration::from_secs(2)).await });
        pairs
    }

    fn close(&mut self, pair: Pair) {
        self.runtime.block_on(close(pair));
    }

    fn cycles(&mut self, count: usize) {
        let workers = self.concurrency.min(count.max(1));
        let tasks: Vec<_> = (0..workers)
            .map(|w| {
                let api = self.api.clone();
                let mine = count / workers + usize::from(w < count % workers);
                self.runtime.spawn(async move {
                    for _ in 0..mine {
                        close(open(api.clone()).await).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            self.runtime.block_on(task).expect("cycle task");
        }
    }

    fn settle(&mut self) {
        self.runtime
            .block_on(async { tokio::time::sleep(Duration::from_secs(2)).await });
    }
}
