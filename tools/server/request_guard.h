// The checks every request passes before routing, before its body is read: the Host allow-list
// (DNS rebinding), cross-site Origin on state-changing requests (CSRF), body framing and size
// (Debian's cpp-httplib 0.11 does not bound chunked bodies), and the shape of the path.
#pragma once

#include <httplib.h>

#include <cstddef>
#include <set>
#include <string>
#include <vector>

namespace lf::serve {

struct GuardVerdict {
  int status = 0;  // 0: allowed; else the HTTP status to answer with
  std::string reason;
};

class RequestGuard {
 public:
  // port: the bound port; extra_hosts: names besides 127.0.0.1, localhost and ::1 that may appear
  // in Host (the --host given, --allow-host); max_body_bytes: the largest Content-Length taken.
  RequestGuard(int port, const std::vector<std::string>& extra_hosts, size_t max_body_bytes);

  GuardVerdict check(const httplib::Request& req) const;
  bool host_allowed(const std::string& host_header) const;
  bool origin_allowed(const std::string& origin) const;
  size_t max_body_bytes() const { return max_body_bytes_; }

 private:
  std::set<std::string> hosts_;    // "127.0.0.1:8765", "localhost:8765", "[::1]:8765", ...
  std::set<std::string> origins_;  // "http://" + each of hosts_
  size_t max_body_bytes_;
};

}  // namespace lf::serve
