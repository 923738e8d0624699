;; Declares 512 pages (32 MiB) of initial memory.
(module
  (memory (export "memory") 512)
  (func (export "_start")))
