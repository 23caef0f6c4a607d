// Leaving with unsaved work asks first: in-app navigation (a change of the URL's fragment, by a
// link, the keyboard or the Back button) and closing or reloading the tab.

import { useEffect, useRef } from 'preact/hooks';

// Each guard answers the question to ask while its page holds unsaved work, else null.
const guards = new Set<() => string | null>();

function pendingQuestion(): string | null {
  for (const guard of guards) {
    const question = guard();
    if (question !== null) return question;
  }
  return null;
}

// Registered when this module is first imported, before App starts listening for page changes:
// on "stay", App never hears of the change, and the address goes back to the page being left.
window.addEventListener('hashchange', (event: HashChangeEvent) => {
  const question = pendingQuestion();
  if (question === null || window.confirm(question)) return;
  event.stopImmediatePropagation();
  window.history.replaceState(window.history.state, '', event.oldURL);
});

window.addEventListener('beforeunload', (event: BeforeUnloadEvent) => {
  if (pendingQuestion() === null) return;
  // The browser asks with its own words; preventDefault is the standard way to ask it to.
  event.preventDefault();
});

/** While `question` is not null, leaving the page or the tab asks it first. */
export function useLeaveGuard(question: string | null): void {
  const current = useRef(question);
  current.current = question;
  useEffect(() => {
    const guard = () => current.current;
    guards.add(guard);
    return () => {
      guards.delete(guard);
    };
  }, []);
}

/** True when nothing is unsaved, or the user chose to discard it. */
export function mayDiscard(): boolean {
  const question = pendingQuestion();
  return question === null || window.confirm(question);
}
