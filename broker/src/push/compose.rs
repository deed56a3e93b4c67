//! What one window's notification says: "3 new messages from priya", "5 new messages in
//! Team", or the newest message's content with `--push-preview full`; the data an app reads
//! (string values only, as FCM requires).

use std::collections::BTreeMap;

use stompbox_push::Notification;

use super::window::Window;
use crate::config::PushPreview;

/// Longest content shown with `--push-preview full` (characters): a notification is a glance;
/// providers cap the payload (APNs 4 KiB) and the app has the message anyway.
const PREVIEW_CHARS: usize = 200;

pub fn notification(user: &str, window: &Window, preview: PushPreview) -> Notification {
    let count = window.count;
    let messages = if count == 1 {
        "1 new message".to_owned()
    } else {
        format!("{count} new messages")
    };
    let (title, summary) = match (&window.group_name, window.mixed) {
        (_, true) => ("New messages".to_owned(), messages),
        (Some(group), false) => (group.clone(), format!("{messages} in {group}")),
        (None, false) => (
            window.sender_id.clone(),
            format!("{messages} from {}", window.sender_id),
        ),
    };
    let body = match preview {
        PushPreview::Count => summary,
        PushPreview::Full => {
            let mut content: String = window.content.chars().take(PREVIEW_CHARS).collect();
            if window.group_name.is_some() {
                content = format!("{}: {content}", window.sender_id);
            }
            if count > 1 {
                content = format!("{content} (+{} more)", count - 1);
            }
            content
        }
    };
    let data = BTreeMap::from([
        ("conversationId".to_owned(), window.conversation_id.clone()),
        ("messageId".to_owned(), window.newest.to_string()),
        ("count".to_owned(), count.to_string()),
        ("senderId".to_owned(), window.sender_id.clone()),
    ]);
    Notification {
        user: user.to_owned(),
        title,
        body,
        data,
        collapse_id: Some(window.conversation_id.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(count: u64, group: Option<&str>, mixed: bool) -> Window {
        Window {
            count,
            newest: 42,
            conversation_id: "c".into(),
            sender_id: "priya".into(),
            group_name: group.map(str::to_owned),
            content: "secret plans".into(),
            mixed,
        }
    }

    #[test]
    fn count_preview_names_sender_or_group_and_never_the_content() {
        let n = notification("bob", &window(3, None, false), PushPreview::Count);
        assert_eq!(
            (n.title.as_str(), n.body.as_str()),
            ("priya", "3 new messages from priya")
        );
        assert_eq!(n.data["count"], "3");
        assert_eq!(n.data["messageId"], "42");
        assert_eq!(n.data["senderId"], "priya");
        assert_eq!(n.data["conversationId"], "c");
        let n = notification("bob", &window(5, Some("Team"), false), PushPreview::Count);
        assert_eq!(n.body, "5 new messages in Team");
        let n = notification("bob", &window(2, Some("Team"), true), PushPreview::Count);
        assert_eq!(n.body, "2 new messages");
        assert!(!n.body.contains("secret"));
    }

    #[test]
    fn full_preview_shows_the_newest_content() {
        let n = notification("bob", &window(1, None, false), PushPreview::Full);
        assert_eq!(n.body, "secret plans");
        let n = notification("bob", &window(3, Some("Team"), false), PushPreview::Full);
        assert_eq!(n.body, "priya: secret plans (+2 more)");
    }
}
