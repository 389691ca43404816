// Request checks before routing: see request_guard.h.
#include "server/request_guard.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace lf::serve {

namespace {

std::string guard_lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// "::1" -> "[::1]"; names and IPv4 addresses stay as they are.
std::string guard_host_literal(const std::string& host) {
  if (host.find(':') != std::string::npos && host.front() != '[') return "[" + host + "]";
  return host;
}

bool guard_has_body_method(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

}  // namespace

RequestGuard::RequestGuard(int port, const std::vector<std::string>& extra_hosts,
                           size_t max_body_bytes)
    : max_body_bytes_(max_body_bytes) {
  std::vector<std::string> names = {"127.0.0.1", "localhost", "::1"};
  names.insert(names.end(), extra_hosts.begin(), extra_hosts.end());
  for (const auto& name : names) {
    if (name.empty() || name == "0.0.0.0" || name == "::") continue;  // not a name to be reached by
    const std::string host = guard_lower(guard_host_literal(name)) + ":" + std::to_string(port);
    hosts_.insert(host);
    origins_.insert("http://" + host);
  }
}

bool RequestGuard::host_allowed(const std::string& host_header) const {
  return hosts_.count(guard_lower(host_header)) > 0;
}

bool RequestGuard::origin_allowed(const std::string& origin) const {
  return origins_.count(guard_lower(origin)) > 0;
}

GuardVerdict RequestGuard::check(const httplib::Request& req) const {
  // Host: exactly one, from the allow-list (a rebound DNS name carries the attacker's host name).
  if (req.get_header_value_count("Host") != 1 || !host_allowed(req.get_header_value("Host")))
    return {403, fmt::format("Host '{}' is not allowed: expected 127.0.0.1, localhost or [::1] "
                             "with this server's port",
                             req.get_header_value("Host"))};
  const bool safe_method = req.method == "GET" || req.method == "HEAD";
  if (!safe_method && req.method != "POST")
    return {405, fmt::format("method {} is not allowed: expected GET or POST", req.method)};
  // State-changing requests from other sites (CSRF): browsers send Origin with every POST.
  if (!safe_method) {
    if (req.has_header("Origin") && !origin_allowed(req.get_header_value("Origin")))
      return {403, fmt::format("cross-site request refused: Origin '{}' is not this server",
                               req.get_header_value("Origin"))};
    if (guard_lower(req.get_header_value("Sec-Fetch-Site")) == "cross-site")
      return {403, "cross-site request refused (Sec-Fetch-Site: cross-site)"};
  }
  // Bodies: a Content-Length no larger than the cap, never chunked (unbounded in httplib 0.11).
  if (req.has_header("Transfer-Encoding"))
    return {411, "Transfer-Encoding is not accepted: send the body with a Content-Length"};
  if (guard_has_body_method(req.method) || req.has_header("Content-Length")) {
    if (req.get_header_value_count("Content-Length") != 1)
      return {411, "a Content-Length header is required"};
    const std::string length = req.get_header_value("Content-Length");
    if (length.empty() || length.size() > 19 ||
        !std::all_of(length.begin(), length.end(),
                     [](unsigned char c) { return std::isdigit(c) != 0; }))
      return {400, fmt::format("Content-Length '{}': expected a byte count", length)};
    const unsigned long long bytes = std::stoull(length);
    if (bytes > max_body_bytes_)
      return {413, fmt::format("body of {} bytes: expected at most {}", bytes, max_body_bytes_)};
  }
  // Paths: the server maps names to things it listed itself, so a path never needs these.
  const std::string& path = req.path;
  if (path.empty() || path.front() != '/' || path.find("..") != std::string::npos ||
      path.find('\\') != std::string::npos || path.find("//") != std::string::npos ||
      std::any_of(path.begin(), path.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
    return {400, "malformed path: expected /name or /api/... without '..', '\\' or '//'"};
  return {};
}

}  // namespace lf::serve
