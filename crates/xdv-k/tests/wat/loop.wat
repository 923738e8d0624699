;; An endless loop: must stop at the fuel limit.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $l (br $l))))
