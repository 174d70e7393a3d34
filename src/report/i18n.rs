//! Labels in Japanese or English. English strings are the keys, so a label missing from the
//! Japanese table shows in English rather than as a blank.

/// Language of the report's labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    Ja,
    En,
}

impl Lang {
    /// Japanese when LC_ALL, LC_MESSAGES or LANG (the first one set) starts with `ja`.
    pub fn from_env() -> Lang {
        let vars = ["LC_ALL", "LC_MESSAGES", "LANG"];
        let locale = vars.iter().find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()));
        Self::from_locale(locale.as_deref().unwrap_or(""))
    }

    /// The language a locale name (`ja_JP.UTF-8`, `C`, `en_US`) asks for.
    pub fn from_locale(locale: &str) -> Lang {
        if locale.to_ascii_lowercase().starts_with("ja") { Lang::Ja } else { Lang::En }
    }

    /// The HTML `lang` attribute.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    /// The label `en` in this language.
    pub fn t(self, en: &'static str) -> &'static str {
        if self == Lang::En {
            return en;
        }
        JA.iter().find(|(k, _)| *k == en).map_or(en, |(_, ja)| ja)
    }

    /// Short names of the days of the week, Sunday first.
    pub fn weekdays(self) -> [&'static str; 7] {
        match self {
            Lang::Ja => ["日", "月", "火", "水", "木", "金", "土"],
            Lang::En => ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"],
        }
    }
}

const JA: &[(&str, &str)] = &[
    ("Case report", "調査報告書"),
    ("Sources and coverage", "ログの出所と網羅性"),
    ("Findings", "検知結果"),
    ("Overview", "概要"),
    ("Timeline", "時系列"),
    ("Lake", "データレイク"),
    ("Time zone", "タイムゾーン"),
    ("Time range", "対象期間"),
    ("whole lake", "全期間"),
    ("Generated", "作成日時"),
    ("trawl version", "trawl バージョン"),
    (
        "Names and internal addresses are pseudonymised with a keyed hash; the key stays with the analyst.",
        "利用者名と社内アドレスは鍵付きハッシュで仮名化しています。鍵は分析者が保管しています。",
    ),
    ("Files read", "読み込んだファイル"),
    ("file", "ファイル"),
    ("files", "ファイル数"),
    ("format", "形式"),
    ("compression", "圧縮"),
    ("size", "サイズ"),
    ("rows", "行数"),
    ("rejects", "解析不能行"),
    ("first", "最初"),
    ("last", "最後"),
    ("status", "状態"),
    ("reason", "理由"),
    ("Skipped files", "読み飛ばしたファイル"),
    ("Coverage per source and hour", "ログ元ごと・時間ごとの網羅性"),
    ("rows logged", "記録あり"),
    ("no logs while other sources logged", "他のログ元は記録しているのに記録なし"),
    ("no logs from any source", "全ログ元で記録なし"),
    ("Gaps", "欠落"),
    ("No gaps longer than the threshold.", "閾値を超える欠落はありません。"),
    ("source", "ログ元"),
    ("table", "テーブル"),
    ("from", "開始"),
    ("to", "終了"),
    ("minutes", "分"),
    ("rows from other sources meanwhile", "その間の他ログ元の行数"),
    ("Gap in the logs during this finding", "この検知の期間中にログの欠落があります"),
    ("hits", "該当件数"),
    ("top entities", "主な対象"),
    ("severity", "重大度"),
    ("period", "期間"),
    ("notes", "注記"),
    ("first rows", "先頭の行"),
    ("all rows", "全行"),
    ("Detections without hits", "該当なしの検知"),
    ("detection", "検知"),
    ("No detection found anything.", "どの検知も該当しませんでした。"),
    ("Requests by hour of week", "曜日・時間帯別のリクエスト数"),
    ("Bytes uploaded per hour", "時間ごとのアップロード量"),
    ("Intervals between connections", "接続間隔の分布"),
    ("repeat period", "周期"),
    ("Destination ports over time", "宛先ポートの推移"),
    ("Requests per day", "日ごとのリクエスト数"),
    ("Firewall entries per day", "日ごとのファイアウォール記録数"),
    ("Top users", "上位の利用者"),
    ("Top clients", "上位の端末"),
    ("Top domains", "上位のドメイン"),
    ("by requests", "リクエスト数順"),
    ("by bytes up", "送信量順"),
    ("by bytes down", "受信量順"),
    ("requests", "リクエスト数"),
    ("bytes up", "送信量"),
    ("bytes down", "受信量"),
    ("user", "利用者"),
    ("client", "端末"),
    ("domain", "ドメイン"),
    ("Denied and blocked", "拒否・遮断"),
    ("decision", "判定"),
    ("i-FILTER categories", "i-FILTER カテゴリ"),
    ("category", "カテゴリ"),
    ("Status codes", "ステータスコード"),
    ("Firewall actions", "ファイアウォールの動作"),
    ("No proxy rows in the range.", "対象期間にプロキシの記録はありません。"),
    ("Activity per hour", "時間ごとの活動"),
    ("time", "時刻"),
    ("what", "内容"),
    ("events", "件数"),
    ("detections", "検知"),
    ("new", "初出"),
    ("hours with rows", "記録のある時間"),
    ("skipped", "スキップ"),
    ("clean", "該当なし"),
    ("failed", "失敗"),
    ("User agents by browser and OS", "ブラウザー・OS 別のユーザーエージェント"),
    ("browser", "ブラウザー"),
    ("OS", "OS"),
    ("device", "端末の種類"),
    ("distinct agents", "エージェントの種類数"),
    ("Formats that do not log the agent", "ユーザーエージェントを記録しない形式"),
    ("Destinations by country and network", "国・ネットワーク別の接続先"),
    (
        "Destinations by country and network need a GeoIP database (--geoip FILE.mmdb).",
        "国・ネットワーク別の接続先を表示するには GeoIP データベース (--geoip FILE.mmdb) が必要です。",
    ),
    ("country", "国"),
    ("network", "ネットワーク (AS)"),
    ("organisation", "組織"),
    ("proxy requests", "プロキシのリクエスト数"),
    ("firewall entries", "ファイアウォールの記録数"),
    ("addresses", "アドレス数"),
    ("unknown", "不明"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locale_and_fallback() {
        assert_eq!(Lang::from_locale("ja_JP.UTF-8"), Lang::Ja);
        assert_eq!(Lang::from_locale("C.UTF-8"), Lang::En);
        assert_eq!(Lang::Ja.t("Findings"), "検知結果");
        assert_eq!(Lang::Ja.t("not translated"), "not translated");
        assert_eq!(Lang::En.t("Findings"), "Findings");
    }
}
