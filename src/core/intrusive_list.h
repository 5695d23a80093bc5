// Doubly linked intrusive list: O(1) insert/remove with no allocation; state == list membership.
#pragma once

#include <cstddef>

namespace sluice::core {

struct ListNode {
  ListNode* prev = nullptr;
  ListNode* next = nullptr;
  [[nodiscard]] bool linked() const { return next != nullptr; }
};

// A class joins lists tagged `Tag` by deriving from ListHook<Tag>; one hook per tag, so an
// object can sit on several lists of different kinds at once.
template <typename Tag>
struct ListHook : ListNode {};

template <typename T, typename Tag>
class IntrusiveList {
  using Hook = ListHook<Tag>;

 public:
  IntrusiveList() { head_.prev = head_.next = &head_; }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;

  [[nodiscard]] bool empty() const { return head_.next == &head_; }
  [[nodiscard]] std::size_t size() const { return size_; }

  void push_back(T& item) { insert_before(&head_, hook(item)); }
  void push_front(T& item) { insert_before(head_.next, hook(item)); }

  void remove(T& item) {
    ListNode* n = hook(item);
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = nullptr;
    --size_;
  }

  [[nodiscard]] T* front() const { return empty() ? nullptr : item(head_.next); }
  [[nodiscard]] T* back() const { return empty() ? nullptr : item(head_.prev); }

  T* pop_front() {
    T* t = front();
    if (t != nullptr) remove(*t);
    return t;
  }

  // Calls fn(T&) oldest first while it returns true; fn must not change the list.
  template <typename Fn>
  void for_each_until(Fn&& fn) const {
    for (ListNode* n = head_.next; n != &head_; n = n->next) {
      if (!fn(*item(n))) return;
    }
  }

  // Calls fn(T&) for each element, oldest first; fn may remove the element it is given.
  template <typename Fn>
  void for_each(Fn&& fn) {
    ListNode* n = head_.next;
    while (n != &head_) {
      ListNode* following = n->next;
      fn(*item(n));
      n = following;
    }
  }

 private:
  static ListNode* hook(T& t) { return static_cast<Hook*>(&t); }
  static T* item(ListNode* n) { return static_cast<T*>(static_cast<Hook*>(n)); }

  void insert_before(ListNode* pos, ListNode* n) {
    n->next = pos;
    n->prev = pos->prev;
    pos->prev->next = n;
    pos->prev = n;
    ++size_;
  }

  ListNode head_;
  std::size_t size_ = 0;
};

}  // namespace sluice::core
