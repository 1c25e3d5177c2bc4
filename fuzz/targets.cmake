# targets.cmake -- the fuzz targets and what each links; shared by fuzz/CMakeLists.txt (libFuzzer
# binaries, clang) and tests/fuzz/CMakeLists.txt (corpus regression binaries, any compiler).
# bg_fuzz_targets(<out-var>): the targets whose libraries exist in this tree.
function(bg_fuzz_targets out)
  set(t fuzz_conf_agent fuzz_conf_controller fuzz_conf_router fuzz_member fuzz_color fuzz_duration
        fuzz_hostport fuzz_election fuzz_sanitize fuzz_utf8 fuzz_page fuzz_canary fuzz_drain
        fuzz_router_view)
  # The agent's parsers of untrusted input live in their own library (agent/parse.c).
  if(TARGET bg_agent_parse)
    list(APPEND t fuzz_agent_put fuzz_eureka)
  endif()
  # HAProxy's X-Haproxy-Server-State (agent/parse.c) and the confirmation tracker fed by a model
  # of HAProxy's checks, httpchk and agent-check (agent/confirm.c).
  if(TARGET bg_agent_parse AND TARGET bg_confirm)
    list(APPEND t fuzz_send_state fuzz_confirm)
  endif()
  # bg-router's member and /status parsers and nginx's upstream renderer (router/route.c), and
  # kind haproxy's Runtime API answers, plan, sweep and confirmation (router/hap.c).
  if(TARGET bg_route)
    list(APPEND t fuzz_route fuzz_render_nginx fuzz_haproxy_state)
  endif()
  set(${out} ${t} PARENT_SCOPE)
endfunction()

# bg_fuzz_libs(<target> <out-var>): the project libraries a target links.
function(bg_fuzz_libs target out)
  if(target STREQUAL "fuzz_conf_agent")
    # agent.yaml's backend types are the agent's (agent/backend_<type>.c, both sides of each).
    set(l bg_agent_conf bg_agent bg_conf bg_common)
  elseif(target MATCHES "^fuzz_conf_")
    set(l bg_conf bg_common)
  elseif(target MATCHES "^fuzz_(member|page|router_view)$")
    set(l bg_plan bg_common)
  elseif(target MATCHES "^fuzz_(route|render_nginx|haproxy_state)$")
    set(l bg_route bg_conf bg_common)
  elseif(target MATCHES "^fuzz_(agent_put|eureka)$")
    set(l bg_agent_parse bg_conf bg_common)
  elseif(target MATCHES "^fuzz_(send_state|confirm)$")
    set(l bg_agent_parse bg_confirm bg_conf bg_common)
  else()
    set(l bg_common)
  endif()
  set(${out} ${l} PkgConfig::JANSSON PARENT_SCOPE)
endfunction()
