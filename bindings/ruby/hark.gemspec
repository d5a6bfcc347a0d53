# frozen_string_literal: true

require_relative 'lib/hark/version'

Gem::Specification.new do |s|
  s.name = 'hark'
  s.version = Hark::VERSION
  s.summary = "PostgreSQL's LISTEN/NOTIFY with no server, in the pg gem's and Sequel's shapes"
  s.description = 'Bindings to libhark (a queue directory shared by processes on one machine) ' \
                  "through the ffi gem: pg's exec, exec_params, wait_for_notify, notifies, socket_io; " \
                  "Sequel's listen and notify; transactions with savepoints."
  s.authors = ['hark contributors']
  s.licenses = ['MIT', 'Apache-2.0']
  s.required_ruby_version = '>= 3.0'
  # lib/hark/libhark.so is packaged when present (`make ruby-lib` copies it there); without it
  # the gem loads $HARK_LIB or the system's libhark.so (`make install`).
  s.files = Dir['lib/**/*.rb'] + Dir['lib/hark/libhark.so'] + ['README.md']
  s.require_paths = ['lib']
  s.add_runtime_dependency 'ffi', '>= 1.15'
end
