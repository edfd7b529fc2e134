// Tokens, pinning and the ramp for grayroute-proxy; see decision_tier.hpp.
#include "decision_tier.hpp"

#include <algorithm>
#include <ctime>
#include <fstream>
#include <sstream>

#include <grayroute/cookie.hpp>

#include <nlohmann/json.hpp>

namespace grayroute_proxy {

namespace {

using grayroute::config_error;

std::string_view view(boost::beast::string_view s) noexcept { return {s.data(), s.size()}; }
boost::beast::string_view bv(std::string_view s) noexcept { return {s.data(), s.size()}; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool same_name(std::string_view a, std::string_view b) noexcept {  // ASCII, case-insensitive
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) return false;
  }
  return true;
}

std::string read_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw config_error("--decision-key-file \"" + path + "\": cannot be read");
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// One file: the library's rotation model (signing key, then the previous one). Two files:
// one key each, the first signs. Errors name the file and line, never the key.
grayroute::decision_keys load_keys(const std::vector<std::string>& files) {
  if (files.size() > 2) throw config_error("--decision-key-file: at most two (the signing key's, then the previous key's)");
  if (files.size() == 1) return grayroute::load_decision_keys(files[0]);
  const std::string first = read_file(files[0]), second = read_file(files[1]);
  for (std::size_t i = 0; i < 2; ++i) {
    if (grayroute::parse_decision_keys(i == 0 ? first : second, files[i]).has_previous()) {
      throw config_error("decision key file \"" + files[i] + "\": holds two keys; with two key files each holds one");
    }
  }
  return grayroute::parse_decision_keys(first + "\n" + second, files[0] + " + " + files[1]);
}

// "12.5%" from parts per million.
std::string percent_text(std::uint32_t ppm) {
  std::string out = std::to_string(ppm / 10000);
  if (const std::uint32_t fraction = ppm % 10000; fraction != 0) {
    std::string digits = std::to_string(fraction);
    digits.insert(0, 4 - digits.size(), '0');
    while (digits.back() == '0') digits.pop_back();
    out += "." + digits;
  }
  return out + "%";
}

std::string utc_text(std::int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[40];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return std::string(text) + ms;
}

}  // namespace

grayroute::set_cookie_config parse_pin_cookie(std::string_view text) {
  std::vector<std::string_view> words;  // the library's words (set_cookie.hpp), as nginx's grayroute_pin_cookie
  while (!(text = trim(text)).empty()) {
    words.push_back(text.substr(0, text.find_first_of(" \t")));
    text.remove_prefix(words.back().size());
  }
  return grayroute::parse_set_cookie_words(words, "--pin-cookie");
}

std::vector<grayroute::key_source> with_pin_key(grayroute::policy_config& config, const std::string& pin_cookie) {
  using kind = grayroute::key_source::kind;
  const std::string pin = pin_cookie.empty() ? std::string() : parse_pin_cookie(pin_cookie).name;
  if (!pin.empty()) grayroute::add_pin_key(config, pin);
  std::vector<grayroute::key_source> keys;
  for (const grayroute::rule_config& rule : config.rules) {
    if (rule.split.empty()) continue;
    const auto& key = rule.key;
    for (const grayroute::key_source& k : key) {
      if (k.source == kind::ip || k.source == kind::given) continue;
      const bool seen = std::any_of(keys.begin(), keys.end(),
                                    [&](const auto& o) { return o.source == k.source && o.name == k.name; });
      if (!seen) keys.push_back(k);
    }
  }
  return keys;
}

decision_tier::decision_tier(const consistency_options& o)
    : header_(o.decision_header), ttl_(o.decision_ttl), policy_version_(o.policy_version) {
  if (!o.decision_key_files.empty()) {
    keys_ = load_keys(o.decision_key_files);
    for (const auto& f : o.decision_key_files) key_files_ += (key_files_.empty() ? "" : ", ") + f;
  }
  if (!is_token(header_)) throw config_error("--decision-header \"" + header_ + "\" is not a header name");
  if (ttl_ <= 0) throw config_error("--decision-ttl " + std::to_string(ttl_) + ": must be at least 1 second");
  if (!o.pin_cookie.empty()) pin_.emplace(parse_pin_cookie(o.pin_cookie));
}

tier_request decision_tier::admit(http::request_header<>& req, bool peer_trusted, std::int64_t now,
                                  const grayroute::policy& policy,
                                  const std::vector<grayroute::key_source>& keys) const noexcept {
  tier_request t;
  const auto lines = req.equal_range(bv(header_));
  std::size_t count = 0;
  for (auto line = lines.first; line != lines.second; ++line) {
    if (++count > 1) continue;
    const std::string_view value = trim(view(line->value()));
    // Longer than any token: kept short (never verified); the status says malformed.
    t.token_size_ = value.size() < t.token_text_.size() ? value.size() : t.token_text_.size();
    for (std::size_t i = 0; i < t.token_size_; ++i) t.token_text_[i] = value[i];
    if (value.size() > t.token_text_.size()) t.token_size_ = 0;
  }
  if (count != 0) {
    t.had_token = true;
    if (!peer_trusted) {
      t.token_refusal = "untrusted_peer";
    } else if (!keys_) {
      t.token_refusal = "no_key";
    } else if (count > 1) {
      t.token_refusal = "several";
    } else {
      const auto v = grayroute::verify_decision_token(t.token(), *keys_, policy.routes(), now);
      if (v.status == grayroute::token_status::valid) {
        t.honoured = true;
        t.token_route = v.route;
        t.rule_offset_ = static_cast<std::size_t>(v.claims.rule.data() - t.token_text_.data());
        t.rule_size_ = v.claims.rule.size();
      } else {
        t.token_refusal = grayroute::to_string(v.status);
      }
    }
    // Believed or not, it does not travel on: the next tier hears only from us.
    req.erase(bv(header_));
  }
  if (t.honoured || !pin_) return t;
  // The first of the splits' key sources present (the pin cookie among them), else a pin.
  for (const grayroute::key_source& k : keys) {
    if (k.source == grayroute::key_source::kind::header) {
      const auto found = req.equal_range(bv(k.name));
      for (auto line = found.first; line != found.second && t.key.empty(); ++line) t.key = trim(view(line->value()));
    } else if (k.source == grayroute::key_source::kind::cookie) {
      const auto cookies = req.equal_range(http::field::cookie);
      for (auto line = cookies.first; line != cookies.second && t.key.empty(); ++line) {
        if (const auto v = grayroute::find_cookie(view(line->value()), k.name)) t.key = *v;
      }
    } else if (k.source == grayroute::key_source::kind::arg) {
      const std::string_view target = view(req.target());
      const std::size_t q = target.find('?');
      if (q == std::string_view::npos) continue;
      std::string_view query = target.substr(q + 1);
      while (!query.empty() && t.key.empty()) {
        const std::string_view pair = query.substr(0, query.find('&'));
        query.remove_prefix(pair.size() < query.size() ? pair.size() + 1 : query.size());
        const std::size_t eq = pair.find('=');
        if (eq != std::string_view::npos && same_name(pair.substr(0, eq), k.name)) {
          t.key = pair.substr(eq + 1);
        }
      }
    }
    if (!t.key.empty()) return t;
  }
  t.pin = grayroute::random_id();
  return t;
}

void decision_tier::settle(grayroute::decision& d, const tier_request& t) const noexcept {
  if (!t.honoured) return;
  d.route = t.token_route;
  d.reason = grayroute::route_reason::upstream;
  d.rule = t.token_rule();
}

void decision_tier::forward(http::request_header<>& req, const grayroute::decision& d, const tier_request& t,
                            const grayroute::policy& policy, std::int64_t now) const {
  if (!keys_) return;
  if (t.honoured) {
    req.set(bv(header_), bv(t.token()));
    return;
  }
  const auto token = grayroute::encode_decision_token(
      {policy.route_name(d.route), d.reason, d.rule, policy_version_, now + ttl_}, *keys_);
  if (token) req.set(bv(header_), bv(token->view()));
}

void decision_tier::respond(http::response_header<>& res, const tier_request& t) const {
  if (!t.pin || !pin_) return;
  char value[512];
  if (const std::size_t n = pin_->write(t.pin->view(), value, sizeof value); n != 0) {
    res.insert(http::field::set_cookie, boost::beast::string_view(value, n));
  } else {
    res.insert(http::field::set_cookie, pin_->build(t.pin->view()));
  }
}

void decision_tier::append_status(std::string& json, const grayroute::policy& policy) const {
  nlohmann::ordered_json more = nlohmann::ordered_json::object();
  const auto shares = policy.scheduled_shares();
  if (!shares.empty()) {
    const std::int64_t now_ms = policy.clock_now_ms();
    auto& ramps = more["ramps"] = nlohmann::ordered_json::array();
    for (const auto& share : shares) {
      const auto s = share.schedule->status(now_ms);
      nlohmann::ordered_json item = {{"rule", share.rule},
                                     {"route", policy.route_name(share.route)},
                                     {"shape", share.schedule->shape() == grayroute::ramp_shape::linear ? "linear" : "steps"},
                                     {"weight_ppm", s.ppm},
                                     {"weight", percent_text(s.ppm)},
                                     {"next", nullptr}};
      if (s.next) {
        item["next"] = {{"at", utc_text(s.next->at_ms)}, {"weight_ppm", s.next->ppm}, {"weight", percent_text(s.next->ppm)}};
      }
      ramps.push_back(std::move(item));
    }
  }
  if (keys_) {
    more["decision_tokens"] = {{"header", header_}, {"keys", keys_->has_previous() ? 2 : 1}, {"ttl_s", ttl_}};
  }
  if (pin_) more["pin_cookie"] = pin_->name();
  if (more.empty()) return;
  const std::string text = more.dump();  // "{...}": its members go before json's closing brace
  const std::size_t close = json.rfind('}');
  if (close == std::string::npos) return;
  json.insert(close, (close > 0 && json[close - 1] != '{' ? "," : "") + text.substr(1, text.size() - 2));
}

std::string decision_tier::describe() const {
  std::string out;
  if (keys_) {
    out += "  decision tokens: " + header_ + " signed and checked with " + key_files_ + (keys_->has_previous() ? " (2 keys)" : "") +
           ", good for " + std::to_string(ttl_) + " s; obeyed only from --trusted-proxy peers\n";
  } else {
    out += "  decision tokens: none (no --decision-key-file); any " + header_ + " a client sends is removed\n";
  }
  if (pin_) out += "  pin cookie: " + pin_->build("<id>") + " for requests without a rollout key\n";
  return out;
}

}  // namespace grayroute_proxy
