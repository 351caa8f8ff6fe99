//! Late delivery (the `late-delivery` dialect): like Exchange's transport
//! pipeline, sent mail reaches the recipients' Inboxes a little after
//! CreateItem has answered. One queue per server keeps the sending order;
//! nothing queued is lost: shutdown delivers whatever is still waiting.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};

use super::store::{Mailbox, NewMessage};

/// The shortest delay, whatever the protocol minute.
pub const MIN_DELAY: Duration = Duration::from_millis(300);

/// One message waiting for delivery.
struct Parcel {
    due: Instant,
    to: Vec<Arc<Mailbox>>,
    message: NewMessage,
}

/// A server's delivery queue, started on first use (inside the runtime).
#[derive(Default)]
pub struct Transport {
    queue: OnceLock<mpsc::UnboundedSender<Parcel>>,
}

/// The delay range for a protocol minute: 1/60 to 5/60 of it (1-5 s at a
/// real minute), never under [`MIN_DELAY`].
pub fn delay_range(minute: Duration) -> (Duration, Duration) {
    let low = (minute / 60).max(MIN_DELAY);
    let high = (minute * 5 / 60).max(low + Duration::from_millis(200));
    (low, high)
}

/// Puts the message into each mailbox's Inbox now.
pub fn deliver_now(to: &[Arc<Mailbox>], message: &NewMessage) {
    for mb in to {
        mb.with(|d| {
            if let Some(inbox) = d.distinguished("inbox") {
                let _ = d.create_item(inbox, message.clone(), true);
            }
        });
    }
}

impl Transport {
    /// Queues a delivery due after a random delay in [`delay_range`]; in
    /// sending order (a later message is never delivered first).
    pub fn send(
        &self,
        minute: Duration,
        shutdown: &watch::Receiver<bool>,
        to: Vec<Arc<Mailbox>>,
        message: NewMessage,
    ) {
        if *shutdown.borrow() {
            deliver_now(&to, &message);
            return;
        }
        let (low, high) = delay_range(minute);
        let spread = (high - low).as_millis() as u64;
        let delay = low + Duration::from_millis(rand::random_range(0..=spread));
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(rx, shutdown.clone()));
            tx
        });
        let parcel = Parcel {
            due: Instant::now() + delay,
            to,
            message,
        };
        if let Err(mpsc::error::SendError(p)) = queue.send(parcel) {
            // The worker is gone (shutdown): deliver rather than lose it.
            deliver_now(&p.to, &p.message);
        }
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<Parcel>, mut shutdown: watch::Receiver<bool>) {
    let mut last_due = Instant::now();
    loop {
        let parcel = tokio::select! {
            p = rx.recv() => p,
            _ = shutdown.wait_for(|v| *v) => None,
        };
        let Some(parcel) = parcel else {
            break;
        };
        // FIFO: never before the previous one.
        let due = parcel.due.max(last_due);
        last_due = due;
        tokio::select! {
            _ = sleep_until(due) => {}
            _ = shutdown.wait_for(|v| *v) => {}
        }
        deliver_now(&parcel.to, &parcel.message);
    }
    // Shutting down: whatever is queued is delivered at once.
    rx.close();
    while let Ok(p) = rx.try_recv() {
        deliver_now(&p.to, &p.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_scale_with_the_minute_and_have_a_floor() {
        let (low, high) = delay_range(Duration::from_secs(60));
        assert_eq!(
            (low, high),
            (Duration::from_secs(1), Duration::from_secs(5))
        );
        let (low, high) = delay_range(Duration::from_secs(2));
        assert_eq!(low, MIN_DELAY);
        assert!(high > low);
    }

    fn inbox_count(mb: &Mailbox) -> usize {
        mb.with(|d| {
            let inbox = d.distinguished("inbox").expect("an inbox");
            d.folder_view(inbox).map(|v| v.total).unwrap_or(0)
        })
    }

    fn message(subject: &str) -> NewMessage {
        NewMessage {
            subject: subject.into(),
            ..NewMessage::default()
        }
    }

    #[tokio::test]
    async fn mail_arrives_later_and_in_order() {
        let (_stop, signal) = watch::channel(false);
        let mb = Arc::new(Mailbox::new(0));
        let mut changes = mb.watch();
        let t = Transport::default();
        let minute = Duration::from_millis(600);
        let sent = Instant::now();
        t.send(minute, &signal, vec![mb.clone()], message("first"));
        t.send(minute, &signal, vec![mb.clone()], message("second"));
        assert_eq!(inbox_count(&mb), 0, "delivered at once");
        while inbox_count(&mb) < 2 {
            tokio::time::timeout(Duration::from_secs(5), changes.changed())
                .await
                .expect("delivered in time")
                .expect("mailbox alive");
        }
        assert!(sent.elapsed() >= MIN_DELAY);
        let subjects: Vec<String> = mb.with(|d| {
            let inbox = d.distinguished("inbox").expect("an inbox");
            d.subjects_in(inbox)
        });
        assert_eq!(subjects, ["first", "second"]);
    }

    #[tokio::test]
    async fn shutdown_delivers_what_is_queued() {
        let (stop, signal) = watch::channel(false);
        let mb = Arc::new(Mailbox::new(0));
        let mut changes = mb.watch();
        let t = Transport::default();
        // A long minute: nothing would be due for minutes.
        t.send(
            Duration::from_secs(3600),
            &signal,
            vec![mb.clone()],
            message("a"),
        );
        t.send(
            Duration::from_secs(3600),
            &signal,
            vec![mb.clone()],
            message("b"),
        );
        stop.send_replace(true);
        while inbox_count(&mb) < 2 {
            tokio::time::timeout(Duration::from_secs(5), changes.changed())
                .await
                .expect("delivered at shutdown")
                .expect("mailbox alive");
        }
        // After shutdown, sending delivers at once.
        t.send(
            Duration::from_secs(3600),
            &signal,
            vec![mb.clone()],
            message("c"),
        );
        assert_eq!(inbox_count(&mb), 3);
    }
}
