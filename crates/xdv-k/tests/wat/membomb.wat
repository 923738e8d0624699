;; Grows memory one 64 KiB page at a time, forever: must stop at the memory limit.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $l
      (drop (memory.grow (i32.const 1)))
      (br $l))))
