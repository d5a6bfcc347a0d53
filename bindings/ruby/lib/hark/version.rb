# frozen_string_literal: true

module Hark
  VERSION = '0.1.0'
end
